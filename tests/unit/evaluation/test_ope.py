"""Off-policy estimators on synthetic bandits whose true policy value is known exactly."""

from __future__ import annotations

import numpy as np
import pytest

from graphrec_ray.evaluation.logging_policy import SlatePolicy, collect_log, true_value
from graphrec_ray.evaluation.ope import (cascade_dr, cascade_q_hat, dm, dr, estimate_single, estimate_slate, ips,
                                         snips, switch_dr)

U, K = 40, 6


def _bandit(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True click probabilities, scores correlated with them, and a noisy reward model."""
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0.05, 0.7, size=(U, K))
    scores = np.log(truth / (1 - truth)) + rng.normal(0, 0.5, size=(U, K))
    q_hat = np.clip(truth + rng.normal(0, 0.1, size=(U, K)), 0.01, 0.99)
    return truth, scores, q_hat


def _single_runs(target: SlatePolicy, q_hat: np.ndarray, n: int, seeds: int) -> tuple[float, dict]:
    truth, scores, _ = _bandit()
    logger = SlatePolicy(scores, temperature=1.0, epsilon=0.2)
    value = true_value(target, truth, 1, "pbm")
    runs: dict[str, list] = {}
    for seed in range(seeds):
        log = collect_log(logger, truth, n, 1, "pbm", seed=seed)
        for name, iv in estimate_single(log, target, q_hat).items():
            runs.setdefault(name, []).append(iv)
    return value, runs


def test_single_action_estimators_are_unbiased() -> None:
    truth, scores, q_hat = _bandit()
    target = SlatePolicy(scores, temperature=0.0)  # deterministic top-1
    value, runs = _single_runs(target, q_hat, n=2000, seeds=40)
    for name in ("ips", "snips", "dr", "switch_dr"):
        est = np.array([iv.estimate for iv in runs[name]])
        se = est.std(ddof=1) / np.sqrt(est.size)
        assert abs(est.mean() - value) < 4 * se + 1e-3, name
    # the direct method is exactly as good as its model: its bias is the model's error under the target
    model_bias = float(np.mean(q_hat[np.arange(U), np.argmax(scores, axis=1)]
                               - truth[np.arange(U), np.argmax(scores, axis=1)]))
    dm_est = np.array([iv.estimate for iv in runs["dm"]])
    assert dm_est.mean() - value == pytest.approx(model_bias, abs=0.01)


def test_direct_method_with_the_true_model_is_unbiased_and_dr_survives_a_bad_model() -> None:
    truth, scores, _ = _bandit()
    target = SlatePolicy(scores, temperature=0.5)
    value, good = _single_runs(target, truth, n=2000, seeds=30)
    assert np.mean([iv.estimate for iv in good["dm"]]) == pytest.approx(value, abs=0.004)
    _, bad = _single_runs(target, np.full((U, K), 0.9), n=2000, seeds=30)
    assert abs(np.mean([iv.estimate for iv in bad["dm"]]) - value) > 0.3
    dr_est = np.array([iv.estimate for iv in bad["dr"]])
    assert abs(dr_est.mean() - value) < 4 * dr_est.std(ddof=1) / np.sqrt(dr_est.size)


def test_error_shrinks_with_sample_size() -> None:
    truth, scores, q_hat = _bandit()
    target = SlatePolicy(scores, temperature=0.5)
    value, small = _single_runs(target, q_hat, n=400, seeds=30)
    _, large = _single_runs(target, q_hat, n=6400, seeds=30)
    for name in ("ips", "snips", "dr", "switch_dr"):
        rmse_small = np.sqrt(np.mean([(iv.estimate - value) ** 2 for iv in small[name]]))
        rmse_large = np.sqrt(np.mean([(iv.estimate - value) ** 2 for iv in large[name]]))
        assert rmse_large < 0.5 * rmse_small, name  # sqrt(16) = 4x in expectation


def test_intervals_cover_the_truth_near_the_nominal_rate() -> None:
    truth, scores, q_hat = _bandit()
    target = SlatePolicy(scores, temperature=0.5)
    value, runs = _single_runs(target, q_hat, n=1000, seeds=200)
    for name in ("ips", "snips", "dr"):
        coverage = np.mean([iv.low <= value <= iv.high for iv in runs[name]])
        assert 0.89 <= coverage <= 0.99, (name, coverage)  # 95 % +- 2.5 binomial sd over 200 seeds


def test_switch_dr_interpolates_between_dm_and_dr() -> None:
    rng = np.random.default_rng(0)
    n = 500
    dist = rng.dirichlet(np.ones(K), size=n)
    pscore = rng.uniform(0.05, 0.5, size=n)
    action = rng.integers(0, K, size=n)
    reward = rng.integers(0, 2, size=n).astype(float)
    q = rng.uniform(size=(n, K))
    assert switch_dr(reward, action, pscore, dist, q, tau=0.0).estimate == pytest.approx(dm(dist, q).estimate)
    assert switch_dr(reward, action, pscore, dist, q, tau=np.inf).estimate == pytest.approx(
        dr(reward, action, pscore, dist, q).estimate)


def test_bootstrap_and_normal_intervals_agree() -> None:
    rng = np.random.default_rng(1)
    n = 3000
    dist = rng.dirichlet(np.ones(K), size=n)
    pscore = np.full(n, 1.0 / K)
    action = rng.integers(0, K, size=n)
    reward = (rng.random(n) < 0.3).astype(float)
    for fn in (ips, snips):
        a = fn(reward, action, pscore, dist)
        b = fn(reward, action, pscore, dist, interval="bootstrap", seed=0)
        assert a.estimate == pytest.approx(b.estimate)
        assert (b.high - b.low) == pytest.approx(a.high - a.low, rel=0.15)


def _slate_runs(click_model: str, target: SlatePolicy, n: int, seeds: int, length: int = 3) -> tuple[float, dict]:
    truth, scores, q_hat = _bandit(3)
    logger = SlatePolicy(scores, temperature=1.0, epsilon=0.2)
    value = true_value(target, truth, length, click_model)  # type: ignore[arg-type]
    runs: dict[str, list] = {}
    for seed in range(seeds):
        log = collect_log(logger, truth, n, length, click_model, seed=seed)  # type: ignore[arg-type]
        for name, iv in estimate_slate(log, target, q_hat).items():
            runs.setdefault(name, []).append(iv.estimate)
    return value, {k: np.array(v) for k, v in runs.items()}


def _unbiased(est: np.ndarray, value: float) -> bool:
    return bool(abs(est.mean() - value) < 4 * est.std(ddof=1) / np.sqrt(est.size) + 1e-3)


@pytest.mark.parametrize("temperature", [0.0, 0.5])
def test_all_slate_estimators_unbiased_under_item_independent_rewards(temperature: float) -> None:
    _, scores, _ = _bandit(3)
    value, runs = _slate_runs("pbm", SlatePolicy(scores, temperature=temperature), n=2000, seeds=30)
    for name, est in runs.items():
        assert _unbiased(est, value), (name, est.mean(), value)


def test_cascade_rewards_bias_independent_ips_but_not_rips_or_cascade_dr() -> None:
    _, scores, _ = _bandit(3)
    value, runs = _slate_runs("cascade", SlatePolicy(scores, temperature=0.5), n=2000, seeds=30)
    for name in ("sips", "rips", "cascade_dr"):
        assert _unbiased(runs[name], value), (name, runs[name].mean(), value)
    assert not _unbiased(runs["iips"], value)
    assert runs["iips"].mean() > value  # the cascade hides clicks below a click; IIPS credits them anyway
    # the reward model as a control variate: Cascade-DR has less spread than RIPS
    assert runs["cascade_dr"].std() < runs["rips"].std()


def test_cascade_dr_and_its_q_model_on_hand_computed_values() -> None:
    """All-zero rewards with Q = 0 give exactly 0; the model Q of a deterministic target adds its own list below."""
    n, length = 50, 2
    slates = np.tile([0, 1], (n, 1))
    zeros = np.zeros((n, length))
    cond = np.zeros((n, length, 3))
    cond[:, 0, 0] = cond[:, 1, 1] = 1.0
    ones = np.ones((n, length))
    est = cascade_dr(zeros, slates, ones * 0.5, ones, cond, np.zeros((n, length, 3)))
    assert est.estimate == 0.0
    q = cascade_q_hat(np.full((n, 3), 0.5), slates, cond, "cascade", target_slates=slates)
    # Q_1 of the target's top item = P(click in 2 slots) = 1 - 0.25 under the model
    assert q[0, 0, 0] == pytest.approx(0.75)
    assert q[0, 1, 1] == pytest.approx(0.5 * 0.5)


def test_slate_intervals_cover_the_truth_near_the_nominal_rate() -> None:
    truth, scores, q_hat = _bandit(3)
    logger = SlatePolicy(scores, temperature=1.0, epsilon=0.2)
    target = SlatePolicy(scores, temperature=0.7)
    value = true_value(target, truth, 2, "cascade")
    hits: dict[str, list[bool]] = {}
    for seed in range(150):
        log = collect_log(logger, truth, 1000, 2, "cascade", seed=seed)
        for name, iv in estimate_slate(log, target, q_hat).items():
            hits.setdefault(name, []).append(iv.low <= value <= iv.high)
    for name in ("rips", "cascade_dr"):
        assert 0.89 <= np.mean(hits[name]) <= 0.99, (name, np.mean(hits[name]))
