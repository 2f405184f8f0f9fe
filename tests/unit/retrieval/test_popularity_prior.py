"""The PDA popularity prior (graphrec_ray/retrieval/popularity_prior.py) on planted popularity with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from graphrec_ray.interactions import Interactions
from graphrec_ray.retrieval.base import EmbeddingRecommender
from graphrec_ray.retrieval.config import RetrievalConfig
from graphrec_ray.retrieval.popularity_prior import (ENGAGEMENT_CAP, applies_to, engagement, export_tables, item_prior,
                                                      log_popularity, score_std, user_prior_weights,
                                                      with_popularity_prior)


def _count(gamma: float, n0: float = 0.0) -> RetrievalConfig:
    """A config with PDA's count prior of strength ``gamma`` (and per-user ``n0``)."""
    return RetrievalConfig(popularity_prior=gamma, popularity_prior_n0=n0, popularity_prior_signal="count")


def _planted() -> tuple[np.ndarray, np.ndarray, Interactions]:
    """6 users, 5 items; item i has 5 - i positive users (item 0 most popular); embeddings prefer the reverse."""
    rng = np.random.default_rng(0)
    users = np.concatenate([np.arange(5 - i) for i in range(5)])
    items = np.concatenate([np.full(5 - i, i) for i in range(5)])
    pos = Interactions(users, items, 6, 5)
    user = np.abs(rng.normal(size=(6, 3))).astype(np.float32) + 1.0
    item = np.outer(np.arange(5, dtype=np.float32) + 1.0, np.ones(3, np.float32))  # dot order: item 4 first
    return user, item, pos


def test_log_popularity_is_the_smoothed_share_of_positive_users() -> None:
    _, _, pos = _planted()
    counts = np.array([5, 4, 3, 2, 1], dtype=np.float64)
    np.testing.assert_allclose(log_popularity(pos), np.log((counts + 1) / 6), rtol=1e-6)
    assert log_popularity(Interactions(np.zeros(0, np.int64), np.zeros(0, np.int64), 2, 3)).tolist() == [0, 0, 0]


def test_augmented_inner_product_equals_dot_plus_gamma_log_pop() -> None:
    user, item, pos = _planted()
    lp = log_popularity(pos)
    u, i = with_popularity_prior(user, item, lp, 0.7)
    assert u.shape == (6, 4) and i.shape == (5, 4) and u.dtype == i.dtype == np.float32
    np.testing.assert_allclose(u @ i.T, user @ item.T + 0.7 * lp[None, :], rtol=1e-5, atol=1e-5)


def test_gamma_zero_keeps_the_dot_ranking_and_large_gamma_gives_popularity_order() -> None:
    user, item, pos = _planted()
    lp = log_popularity(pos)
    u0, i0 = with_popularity_prior(user, item, lp, 0.0)
    assert u0.shape == user.shape and np.array_equal(u0, user) and np.array_equal(i0, item)  # off: same tables
    top0, _ = EmbeddingRecommender(u0, i0).recommend(np.arange(6), k=5)
    assert (top0 == [4, 3, 2, 1, 0]).all()  # the dot ranking: least popular first
    big_u, big_i = with_popularity_prior(user, item, lp, 1e4)
    top, _ = EmbeddingRecommender(big_u, big_i).recommend(np.arange(6), k=5)
    assert (top == [0, 1, 2, 3, 4]).all()  # popularity order


def test_score_std_is_the_exact_spread_of_all_dot_products() -> None:
    rng = np.random.default_rng(1)
    user, item = rng.normal(size=(40, 5)) + 0.3, rng.normal(size=(30, 5)) - 0.1
    assert score_std(user, item) == pytest.approx(float(np.std(user @ item.T)), rel=1e-9)


def test_export_tables_puts_the_prior_on_ips_models_only_in_score_spread_units() -> None:
    user, item, pos = _planted()
    assert applies_to("lightgcn_ips", 1.0) and applies_to("mf_ips", 1.0)
    assert not applies_to("lightgcn", 1.0) and not applies_to("mf", 1.0) and not applies_to("lightgcn_ips", 0.0)
    u, i = export_tables("lightgcn", _count(2.0), user, item, pos)
    assert u is user and i is item  # plain models keep their tables (and their width)
    u, i = export_tables("lightgcn_ips", _count(2.0), user, item, pos)
    s = score_std(user, item)
    np.testing.assert_allclose(u @ i.T, user @ item.T + 2.0 * s * log_popularity(pos)[None, :], rtol=1e-5, atol=1e-4)


def test_log_pop_of_the_wrong_length_is_rejected() -> None:
    user, item, _ = _planted()
    with pytest.raises(ValueError, match="log_pop"):
        with_popularity_prior(user, item, np.zeros(4, np.float32), 1.0)


def test_per_user_weight_shrinks_the_prior_for_users_with_long_histories() -> None:
    # planted: user 0 has 5 positives, user 4 one, user 5 none -> weights n0/(n0+n_u) = 2/7, 2/3, 1
    user, item, pos = _planted()
    w = user_prior_weights(pos, 2.0)
    np.testing.assert_allclose(w, 2.0 / (2.0 + np.array([5, 4, 3, 2, 1, 0])), rtol=1e-6)
    assert w[0] < w[4] < w[5] == 1.0  # many positives -> smaller prior weight; no history -> the full gamma
    assert user_prior_weights(pos, 0.0).tolist() == [1.0] * 6  # n0 = 0: the global gamma for everyone


def test_per_user_weight_is_in_the_user_column_and_the_inner_product_is_dot_plus_weighted_prior() -> None:
    user, item, pos = _planted()
    u, i = export_tables("lightgcn_ips", _count(2.0, 2.0), user, item, pos)
    s, lp, w = score_std(user, item), log_popularity(pos), user_prior_weights(pos, 2.0)
    np.testing.assert_allclose(u[:, -1], w, rtol=1e-6)  # the user table carries the weight ...
    np.testing.assert_allclose(i[:, -1], 2.0 * s * lp, rtol=1e-5)  # ... the item column is unchanged
    np.testing.assert_allclose(u @ i.T, user @ item.T + 2.0 * s * w[:, None] * lp[None, :], rtol=1e-5, atol=1e-4)
    # regression (global prior): without n0 the user column stays ones, as serving and the manifest expect
    u1, _ = export_tables("lightgcn_ips", _count(2.0), user, item, pos)
    assert (u1[:, -1] == 1.0).all()
    with pytest.raises(ValueError, match="user_weight"):
        with_popularity_prior(user, item, lp, 1.0, np.ones(5, np.float32))


def _views(rates: list[float], shown: list[int], seed: int = 0) -> Interactions:
    """Item ``i`` is viewed ``shown[i]`` times (distinct users) with watch ratios ~ lognormal around ``rates[i]``."""
    rng = np.random.default_rng(seed)
    users = np.concatenate([np.arange(n) for n in shown])
    items = np.concatenate([np.full(n, i) for i, n in enumerate(shown)])
    wr = np.concatenate([r * np.exp(0.3 * rng.normal(size=n)) for r, n in zip(rates, shown)])
    return Interactions(users, items, max(shown), len(shown), wr)


def test_engagement_ranks_items_by_how_much_their_viewers_watch_not_by_how_often_they_were_shown() -> None:
    # planted: item 0 is shown 400 times but watched little, item 2 shown 40 times and watched most: counts of
    # positives (watch >= 1) rank 0 first, engagement ranks by the watch level whatever the exposure
    views = _views([0.8, 1.2, 2.5], [400, 100, 40])
    pos = views.relevant(">=", 1.0)
    assert np.argmax(log_popularity(pos)) == 0  # the count prior favours the most shown item
    z = engagement(views, shrinkage=10.0)
    assert z.tolist() == sorted(z.tolist()) and z[2] > z[1] > z[0]  # the engagement prior: the watch level order
    assert z.dtype == np.float32 and abs(float(z.mean())) < 1e-6 and float(z.std()) == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_array_equal(item_prior("engagement", pos, views, 10.0), z)
    np.testing.assert_array_equal(item_prior("count", pos, None, 10.0), log_popularity(pos))


def test_engagement_shrinks_rarely_viewed_items_to_the_mean_and_caps_outlier_ratios() -> None:
    # item 1 was viewed once with the best ratio: raw (shrinkage 0) it tops the list, shrunk by 50 pseudo-views it
    # falls below item 0, which 200 viewers watched well (its own mean barely moves)
    views = _views([1.5, 3.0, 0.5], [200, 1, 200], seed=1)
    assert np.argmax(engagement(views, 0.0)) == 1
    assert np.argmax(engagement(views, 50.0)) == 0
    # never-viewed items sit at the overall mean: between the best and the worst viewed item
    unseen = Interactions(views.user_idx, views.item_idx, views.n_users, 4, views.watch_ratio)
    z = engagement(unseen, 10.0)
    assert z[2] < z[3] < z[0]
    # regression (outlier replays): one 600x view of a rarely shown item counts as ENGAGEMENT_CAP, not as 600, so it
    # does not overtake an item with many strong views
    wr = np.concatenate([np.full(50, 3.0), [0.5, 0.5, 600.0]])
    out = Interactions(np.arange(53), np.repeat([0, 1], [50, 3]), 53, 2, wr)
    z_out = engagement(out, 0.0)
    assert z_out[0] > z_out[1]  # uncapped, item 1's mean log1p would be 2.4 > item 0's 1.39
    assert (np.log1p([0.5, 0.5, 600.0]).mean() > np.log1p(3.0)) and np.log1p(ENGAGEMENT_CAP) < np.log1p(600.0)


def test_engagement_needs_watch_ratios_and_known_signals() -> None:
    pos = Interactions(np.array([0]), np.array([0]), 1, 2)
    with pytest.raises(ValueError, match="watch ratio"):
        engagement(pos, 10.0)
    with pytest.raises(ValueError, match="exposures"):
        item_prior("engagement", pos, None, 10.0)
    with pytest.raises(ValueError, match="unknown prior signal"):
        item_prior("clicks", pos, pos, 10.0)
    with pytest.raises(ValueError, match="popularity_prior_signal"):
        RetrievalConfig(popularity_prior_signal="clicks")  # type: ignore[arg-type]


def test_export_tables_with_the_engagement_prior_adds_gamma_s_w_z() -> None:
    user, item, pos = _planted()
    views = Interactions(pos.user_idx, pos.item_idx, 6, 5, np.linspace(0.2, 3.0, len(pos)))
    cfg = RetrievalConfig(popularity_prior=1.5, popularity_prior_n0=2.0)
    assert cfg.popularity_prior_signal == "engagement"  # the default signal
    u, i = export_tables("lightgcn_ips", cfg, user, item, pos, views)
    z, s, w = engagement(views, cfg.popularity_prior_shrinkage), score_std(user, item), user_prior_weights(pos, 2.0)
    np.testing.assert_allclose(u @ i.T, user @ item.T + 1.5 * s * w[:, None] * z[None, :], rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match="exposures"):
        export_tables("lightgcn_ips", cfg, user, item, pos)  # the engagement prior without the views it needs
