"""Plackett–Luce / epsilon-greedy logging policies: exact propensities against enumeration and Monte Carlo."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from graphrec_ray.evaluation.logging_policy import (SlatePolicy, collect_log, draw_clicks, examination,
                                                    per_user_true_value)


def _policy(temperature: float = 0.8, epsilon: float = 0.1, u: int = 3, k: int = 6, seed: int = 0) -> SlatePolicy:
    return SlatePolicy(np.random.default_rng(seed).normal(0, 1.5, size=(u, k)), temperature=temperature,
                       epsilon=epsilon)


def _all_slates(k: int, length: int) -> np.ndarray:
    return np.array(list(itertools.permutations(range(k), length)), dtype=np.int64)


@pytest.mark.parametrize("temperature,epsilon", [(0.8, 0.0), (0.8, 0.2), (0.0, 0.3), (2.0, 1.0)])
def test_slate_propensities_sum_to_one_over_all_slates(temperature: float, epsilon: float) -> None:
    pol = _policy(temperature, epsilon, k=5)
    slates = _all_slates(5, 3)
    for user in range(pol.n_users):
        rows = np.full(len(slates), user)
        prefix = pol.prefix_propensity(rows, slates)
        assert prefix[:, -1].sum() == pytest.approx(1.0, abs=1e-12)
        # the prefix probability of a_1..a_l is the sum over slates that start with it
        first = {a: prefix[slates[:, 0] == a, -1].sum() for a in range(5)}
        for a, total in first.items():
            assert prefix[slates[:, 0] == a, 0][0] == pytest.approx(total, abs=1e-12)


def test_conditional_is_normalised_and_multiplies_to_the_prefix() -> None:
    pol = _policy(0.7, 0.25, k=7)
    rows = np.repeat(np.arange(pol.n_users), 50)
    slates = pol.sample(rows, 4, seed=3)
    cond = pol.conditional(rows, slates)
    np.testing.assert_allclose(cond.sum(axis=2), 1.0, atol=1e-12)
    picked = np.take_along_axis(cond, slates[:, :, None], axis=2)[:, :, 0]
    np.testing.assert_allclose(np.cumprod(picked, axis=1), pol.prefix_propensity(rows, slates), rtol=1e-12)
    # items already shown above have probability 0
    for pos in range(1, 4):
        assert np.all(np.take_along_axis(cond[:, pos], slates[:, :pos], axis=1) == 0.0)


def test_plackett_luce_marginals_match_enumeration_and_monte_carlo() -> None:
    pol = _policy(0.6, 0.15, u=2, k=6)
    length = 3
    marg = pol.marginal(length)
    slates = _all_slates(6, length)
    for user in range(2):
        p = pol.prefix_propensity(np.full(len(slates), user), slates)[:, -1]
        exact = np.zeros((length, 6))
        for pos in range(length):
            np.add.at(exact[pos], slates[:, pos], p)
        np.testing.assert_allclose(marg[user], exact, atol=1e-8)
    n = 100_000
    rows = np.repeat(np.arange(2), n)
    drawn = pol.sample(rows, length, seed=11)
    freq = np.zeros_like(marg)
    np.add.at(freq, (rows[:, None], np.arange(length)[None, :], drawn), 1.0 / n)
    sd = np.sqrt(marg * (1 - marg) / n)
    assert np.all(np.abs(freq - marg) <= 5 * sd + 1e-9)


def test_sharp_plackett_luce_marginals_stay_normalised() -> None:
    """Low temperature spreads weights over ~30 orders of magnitude; the log-time grid must cover them."""
    pol = _policy(0.1, 0.0, u=4, k=20, seed=2)
    marg = pol.marginal(5)
    np.testing.assert_allclose(marg.sum(axis=2), 1.0, atol=1e-8)
    assert np.all(marg.sum(axis=1) <= 1.0 + 1e-8)


def test_epsilon_greedy_propensity_of_the_greedy_slate() -> None:
    k, eps = 6, 0.2
    pol = _policy(0.0, eps, k=k)
    greedy = np.argsort(-pol.scores, axis=1, kind="stable")[:, :2]
    assert pol.deterministic_slates(2) is None
    np.testing.assert_array_equal(SlatePolicy(pol.scores, 0.0).deterministic_slates(2), greedy)
    p = pol.prefix_propensity(np.arange(3), greedy)[:, -1]
    np.testing.assert_allclose(p, (1 - eps) + eps / (k * (k - 1)))


def test_fixed_lists_are_served_as_given() -> None:
    fixed = np.array([[2, 0, 1], [1, 2, 0]])
    pol = SlatePolicy(np.zeros((2, 3)), fixed=fixed)
    np.testing.assert_array_equal(pol.sample(np.array([0, 1, 1]), 3, seed=0), fixed[[0, 1, 1]])
    assert pol.prefix_propensity(np.array([0]), np.array([[2, 1, 0]]))[0].tolist() == [1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="repeat"):
        SlatePolicy(np.zeros((1, 3)), fixed=np.array([[1, 1, 0]]))


def test_cascade_clicks_at_most_once_and_pbm_rate_follows_examination() -> None:
    p = np.full((200_000, 4), 0.3)
    cascade = draw_clicks(p, "cascade", seed=0)
    assert cascade.sum(axis=1).max() == 1.0
    np.testing.assert_allclose(cascade.mean(axis=0), 0.3 * 0.7 ** np.arange(4), atol=0.005)
    pbm = draw_clicks(p, "pbm", seed=1)
    np.testing.assert_allclose(pbm.mean(axis=0), 0.3 * examination(4), atol=0.005)


@pytest.mark.parametrize("click_model", ["pbm", "cascade"])
@pytest.mark.parametrize("temperature,epsilon", [(0.7, 0.1), (0.0, 0.0), (0.0, 0.3)])
def test_true_value_matches_simulated_clicks(click_model: str, temperature: float, epsilon: float) -> None:
    pol = _policy(temperature, epsilon, u=3, k=7, seed=5)
    truth = np.random.default_rng(1).uniform(0.05, 0.8, size=(3, 7))
    exact = per_user_true_value(pol, truth, 3, click_model)  # type: ignore[arg-type]
    log = collect_log(pol, truth, 150_000, 3, click_model, seed=2)  # type: ignore[arg-type]
    per_round = log.rewards.sum(axis=1)
    for user in range(3):
        got = per_round[log.rows == user]
        assert abs(got.mean() - exact[user]) <= 5 * got.std() / np.sqrt(got.size) + 1e-9


def test_deterministic_cascade_value_is_one_minus_no_click() -> None:
    truth = np.array([[0.5, 0.2, 0.1]])
    pol = SlatePolicy(np.array([[3.0, 2.0, 1.0]]), temperature=0.0)
    assert per_user_true_value(pol, truth, 2, "cascade")[0] == pytest.approx(1 - 0.5 * 0.8)
    assert per_user_true_value(pol, truth, 2, "pbm")[0] == pytest.approx(0.5 + 0.2 / np.log2(3))


def test_log_carries_the_logger_propensities() -> None:
    pol = _policy(1.0, 0.1, k=6)
    truth = np.full((3, 6), 0.3)
    log = collect_log(pol, truth, 500, 3, "pbm", seed=0)
    marg = pol.marginal(3)
    np.testing.assert_allclose(log.pscore_item_position,
                               marg[log.rows[:, None], np.arange(3)[None, :], log.slates])
    np.testing.assert_allclose(log.pscore_slate, log.pscore_cascade[:, -1])
    assert np.all(log.pscore_cascade[:, 1:] <= log.pscore_cascade[:, :-1])


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError):
        SlatePolicy(np.zeros((2, 3)), temperature=-1.0)
    with pytest.raises(ValueError):
        SlatePolicy(np.zeros((2, 3)), epsilon=1.5)
    with pytest.raises(ValueError, match="slate length"):
        _policy().sample(np.array([0]), 10, seed=0)
