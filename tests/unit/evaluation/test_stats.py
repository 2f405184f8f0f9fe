"""Bootstrap intervals: coverage of a known mean, paired differences, ratios (graphrec_ray/evaluation/stats.py)."""

import numpy as np
import pytest

from graphrec_ray.evaluation.stats import bootstrap_mean, bootstrap_ratio, paired_difference, per_user_intervals


def test_bootstrap_interval_covers_known_mean_at_stated_rate():
    # 300 synthetic "user" samples of a skewed metric with known mean 1/3 (Beta(1, 2)); 95% intervals.
    rng = np.random.default_rng(7)
    covered = 0
    trials = 300
    for s in range(trials):
        iv = bootstrap_mean(rng.beta(1.0, 2.0, 200), n_boot=400, seed=s)
        covered += iv.low <= 1 / 3 <= iv.high
    rate = covered / trials
    # binomial sd at 0.95 over 300 trials is 0.0126; percentile bootstrap undercovers slightly at n=200
    assert 0.90 <= rate <= 0.99, rate


def test_paired_difference_detects_shift_that_unpaired_noise_hides():
    rng = np.random.default_rng(1)
    user_effect = rng.normal(0.0, 1.0, 500)  # large between-user variance shared by both models
    a = user_effect + 0.05 + rng.normal(0.0, 0.05, 500)
    b = user_effect + rng.normal(0.0, 0.05, 500)
    iv = paired_difference(a, b, seed=0)
    assert iv.excludes_zero() and iv.verdict() == "better"
    assert iv.low < 0.05 < iv.high
    # the same two models compared on the same users with no real difference: not significant
    c = user_effect + rng.normal(0.0, 0.05, 500)
    assert paired_difference(b, c, seed=0).verdict() == "not significant"


def test_seeds_are_averaged_per_user_before_resampling():
    rng = np.random.default_rng(2)
    per_seed = rng.normal(0.3, 0.1, size=(3, 100))
    iv = bootstrap_mean(per_seed, seed=0)
    assert iv.n == 100
    assert iv.estimate == pytest.approx(per_seed.mean())


def test_nan_users_dropped_and_ratio_of_sums():
    v = np.array([1.0, np.nan, 3.0])
    assert bootstrap_mean(v, n_boot=50).estimate == pytest.approx(2.0)
    clicks = np.array([1.0, 0.0, 3.0, 2.0])
    shown = np.array([10.0, 10.0, 10.0, 10.0])
    iv = bootstrap_ratio(clicks, shown, n_boot=200)
    assert iv.estimate == pytest.approx(6 / 40)
    assert iv.low <= iv.estimate <= iv.high
    flat = per_user_intervals({"recall@10": np.array([0.1, 0.2, 0.3])}, n_boot=50)
    assert set(flat) == {"recall@10", "recall@10/ci_low", "recall@10/ci_high"}


def test_shape_mismatch_rejected():
    with pytest.raises(ValueError):
        paired_difference(np.zeros(3), np.zeros(4))
