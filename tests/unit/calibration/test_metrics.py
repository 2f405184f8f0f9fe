"""ECE (equal-mass, equal-width) and Brier against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from graphrec_ray.calibration.metrics import brier, ece, reliability_bins


def test_equal_width_ece_hand_computed() -> None:
    # 3 bins of width 1/3: [0.1, 0.2] -> bin 0 (labels 0, 1), [0.5] -> bin 1 (label 1), [0.9, 0.95] -> bin 2 (1, 1)
    p = np.array([0.1, 0.2, 0.5, 0.9, 0.95])
    y = np.array([0, 1, 1, 1, 1])
    expected = (2 * abs(0.15 - 0.5) + 1 * abs(0.5 - 1.0) + 2 * abs(0.925 - 1.0)) / 5
    assert ece(p, y, n_bins=3, strategy="equal_width") == pytest.approx(expected)


def test_equal_mass_ece_hand_computed() -> None:
    # 6 samples, 2 equal-mass bins: the 3 smallest and the 3 largest predictions
    p = np.array([0.9, 0.1, 0.3, 0.8, 0.2, 0.7])
    y = np.array([1, 0, 1, 0, 0, 1])
    low = abs(np.mean([0.1, 0.2, 0.3]) - np.mean([0, 0, 1]))
    high = abs(np.mean([0.7, 0.8, 0.9]) - np.mean([1, 0, 1]))
    assert ece(p, y, n_bins=2, strategy="equal_mass") == pytest.approx(0.5 * low + 0.5 * high)
    b = reliability_bins(p, y, n_bins=2, strategy="equal_mass")
    assert b.count.tolist() == [3, 3]


def test_fifteen_bins_by_default_and_empty_bins_dropped() -> None:
    p = np.array([0.01, 0.99])
    b = reliability_bins(p, np.array([0, 1]), strategy="equal_width")
    assert b.count.tolist() == [1, 1]  # 13 of the 15 default bins are empty and dropped
    assert ece(p, np.array([0, 1]), strategy="equal_width") == pytest.approx(0.01)


def test_brier_hand_computed_and_true_probability_targets() -> None:
    assert brier(np.array([0.2, 0.7]), np.array([0, 1])) == pytest.approx((0.04 + 0.09) / 2)
    # targets may be true probabilities: a perfect predictor has zero ECE even if labels would be noisy
    pt = np.linspace(0.05, 0.95, 300)
    assert ece(pt, pt) == pytest.approx(0.0, abs=1e-12)


def test_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError):
        ece(np.array([0.5, 1.5]), np.array([0, 1]))
    with pytest.raises(ValueError):
        brier(np.array([0.5]), np.array([0, 1]))


def test_equal_mass_and_equal_width_differ_on_a_known_case() -> None:
    """All ten predictions fall into one equal-width bin, which averages a low-p/negative half and a higher-p/
    positive half into one point; equal-mass bins keep the halves apart and see the larger error."""
    from graphrec_ray.calibration.metrics import ece

    p = np.arange(1, 11) / 100.0  # 0.01 .. 0.10
    y = np.array([0] * 5 + [1] * 5)
    width = abs(p.mean() - 0.5)  # one non-empty bin: |0.055 - 0.5| = 0.445
    mass = 0.5 * abs(p[:5].mean() - 0.0) + 0.5 * abs(p[5:].mean() - 1.0)  # 0.5 * 0.03 + 0.5 * 0.92 = 0.475
    assert ece(p, y, n_bins=2, strategy="equal_width") == pytest.approx(width)
    assert ece(p, y, n_bins=2, strategy="equal_mass") == pytest.approx(mass)
    assert mass > width


def test_log_loss_known_values() -> None:
    from graphrec_ray.calibration.metrics import log_loss

    assert log_loss(np.array([0.8, 0.4]), np.array([1, 0])) == pytest.approx(-(np.log(0.8) + np.log(0.6)) / 2)
    # against true probabilities the minimum is at the truth (the Bernoulli entropy)
    pt = np.array([0.2, 0.7])
    entropy = -np.mean(pt * np.log(pt) + (1 - pt) * np.log(1 - pt))
    assert log_loss(pt, pt) == pytest.approx(entropy)
    assert log_loss(np.array([0.3, 0.6]), pt) > entropy
    assert np.isfinite(log_loss(np.array([0.0, 1.0]), np.array([1, 0])))  # clipped, not infinite
