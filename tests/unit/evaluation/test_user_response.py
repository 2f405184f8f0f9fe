"""User-response model of the mock A/B test: exit rules, the loop reference, exact expectations (user_response.py)."""

import numpy as np
import pytest

from graphrec_ray.evaluation.user_response import (END_CATEGORY, END_MAX_LENGTH, END_PATIENCE, ResponseModel,
                                                   category_stop_length, expected_sessions, simulate_sessions,
                                                   simulate_sessions_loop)

FIELDS = ("impressions", "clicks", "value", "distinct_categories")


def _random_feeds(U: int = 300, L: int = 50, n_cat: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mu = rng.normal(-0.5, 0.6, (U, 1)) + rng.normal(0.0, 0.5, (U, L))  # users differ (shared offset)
    return mu, rng.integers(0, n_cat, (U, L))


def test_session_ends_by_category_repeat_on_planted_one_category_feed():
    # every item clicked (mu huge), all in category 3: the 5th item fills half the 10-item window -> leave at 5
    m = ResponseModel(patience=5, category_window=10, max_category_repeat=5)
    mu = np.full((4, 50), 10.0)
    cat = np.full((4, 50), 3)
    s = simulate_sessions(mu, cat, m, seed=0)
    assert s.impressions.tolist() == [5.0] * 4
    assert (s.end_reason == END_CATEGORY).all()
    assert s.distinct_categories.tolist() == [1.0] * 4
    # the same users on a feed cycling through 10 categories never trigger the rule: they reach max length
    s2 = simulate_sessions(mu, np.tile(np.arange(10), (4, 5)), m, seed=0)
    assert s2.impressions.tolist() == [50.0] * 4 and (s2.end_reason == END_MAX_LENGTH).all()


def test_session_ends_when_patience_runs_out_without_clicks():
    m = ResponseModel(patience=4)
    s = simulate_sessions(np.full((3, 50), -20.0), np.tile(np.arange(10), (3, 5)), m, seed=1)
    assert s.impressions.tolist() == [4.0] * 3 and s.clicks.sum() == 0
    assert (s.end_reason == END_PATIENCE).all()


def test_category_stop_length_counts_only_the_recent_window():
    # category 0 at positions 0, 4, 8: three occurrences, but never 2 within any window of 3 items
    cat = np.array([[0, 1, 2, 3, 0, 1, 2, 3, 0, 5], [7, 7, 1, 2, 3, 4, 5, 6, 8, 9]])
    assert category_stop_length(cat, window=3, max_repeat=2).tolist() == [11, 2]  # 11 = L + 1: never fires


def test_vectorised_simulator_equals_per_user_loop_draw_for_draw():
    mu, cat = _random_feeds()
    n_served = np.random.default_rng(5).integers(5, 51, mu.shape[0])
    m = ResponseModel()
    a = simulate_sessions(mu, cat, m, seed=3, n_served=n_served)
    b = simulate_sessions_loop(mu, cat, m, seed=3, n_served=n_served)
    for f in FIELDS:
        np.testing.assert_allclose(getattr(a, f), getattr(b, f), rtol=1e-12, atol=1e-9, err_msg=f)
    np.testing.assert_array_equal(a.end_reason, b.end_reason)
    assert set(np.unique(a.end_reason)) == {END_CATEGORY, END_PATIENCE, END_MAX_LENGTH}  # all rules exercised


def test_exact_expectations_match_a_large_simulation():
    mu, cat = _random_feeds(U=200)
    m = ResponseModel()
    exact = expected_sessions(mu, cat, m)
    sims = [simulate_sessions(mu, cat, m, seed=s) for s in range(200)]  # 40,000 sessions
    for f in FIELDS:
        per_rep = np.array([getattr(x, f).mean() for x in sims])
        se = per_rep.std(ddof=1) / np.sqrt(per_rep.size)
        assert abs(per_rep.mean() - getattr(exact, f).mean()) < 4 * se, f


def test_clicks_and_value_follow_the_true_watch_model():
    # long sessions without exits: per-item click rate and mean log1p(watch) equal the closed-form truth
    from graphrec_ray.sources.simulator.ground_truth import expected_log1p_watch_ratio, p_watch_at_least

    m = ResponseModel(patience=50, max_category_repeat=10, max_pages=5)
    mu = np.full((4000, 50), 0.1)
    cat = np.tile(np.arange(10), (4000, 5))
    s = simulate_sessions(mu, cat, m, seed=2)
    p_true = p_watch_at_least(np.array(0.1), m.sigma, m.p_skip, m.click_threshold)
    v_true = expected_log1p_watch_ratio(np.array(0.1), m.sigma, m.p_skip)
    # 200,000 impressions: binomial se of the click rate ~0.001
    assert s.impressions.sum() == 200_000
    assert abs(s.clicks.sum() / 200_000 - p_true) < 0.004
    assert abs(s.value.sum() / 200_000 - v_true) < 0.004


def test_diverse_feed_keeps_users_longer_in_expectation():
    m = ResponseModel()
    mu = np.full((1, 50), -0.2)
    narrow = expected_sessions(mu, np.tile([0, 0, 1], 17)[None, :50], m)
    diverse = expected_sessions(mu, np.tile(np.arange(10), 5)[None, :], m)
    assert diverse.impressions[0] > narrow.impressions[0]


@pytest.mark.parametrize("bad", [{"sigma": 0.0}, {"max_category_repeat": 1}, {"patience": 0},
                                 {"max_category_repeat": 11, "category_window": 10}])
def test_response_model_rejects_invalid_parameters(bad):
    with pytest.raises(ValueError):
        ResponseModel(**bad)
