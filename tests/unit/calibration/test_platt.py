"""Platt scaling recovers a known logistic distortion; isotonic option; JSON round trips; reliability PNG."""

from __future__ import annotations

import numpy as np
import pytest

from graphrec_ray.calibration.factory import fit_calibrator, load_calibrator
from graphrec_ray.calibration.isotonic import IsotonicCalibrator
from graphrec_ray.calibration.metrics import ece
from graphrec_ray.calibration.platt import PlattCalibrator, sigmoid
from graphrec_ray.calibration.reliability import plot_reliability


def _distorted(n: int, seed: int, a: float, b: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True logits t, labels ~ Bernoulli(sigmoid(t)), and a model's logits z = (t - b) / a (overconfident)."""
    rng = np.random.default_rng(seed)
    t = rng.normal(0.3, 1.2, n)
    y = (rng.random(n) < sigmoid(t)).astype(np.int64)
    return (t - b) / a, y, sigmoid(t)


def test_platt_recovers_known_distortion() -> None:
    z, y, _ = _distorted(100_000, 0, a=0.6, b=-0.4)
    cal = PlattCalibrator.fit(z, y)
    assert cal.a == pytest.approx(0.6, abs=0.03)
    assert cal.b == pytest.approx(-0.4, abs=0.03)


def test_platt_lowers_ece_below_002_on_known_probabilities() -> None:
    z_val, y_val, _ = _distorted(100_000, 1, a=0.5, b=0.8)
    z_test, y_test, p_true = _distorted(100_000, 2, a=0.5, b=0.8)
    cal = fit_calibrator("platt", z_val, y_val)
    raw, calibrated = sigmoid(z_test), cal.predict(z_test)
    for targets in (y_test, p_true):  # vs labels and vs the TRUE probabilities
        assert ece(calibrated, targets) < 0.02 < ece(raw, targets)
    assert np.abs(calibrated - p_true).max() < 0.03


def test_calibrators_round_trip_through_json(tmp_path) -> None:
    z, y, _ = _distorted(20_000, 3, a=2.0, b=0.1)
    for method in ("platt", "isotonic"):
        cal = fit_calibrator(method, z, y)
        cal.save(tmp_path / f"{method}.json")
        back = load_calibrator(tmp_path / f"{method}.json")
        assert back.method == method
        np.testing.assert_allclose(back.predict(z[:500]), cal.predict(z[:500]))


def test_isotonic_is_monotone_and_calibrates() -> None:
    z_val, y_val, _ = _distorted(50_000, 4, a=0.5, b=0.8)
    z_test, _, p_true = _distorted(50_000, 5, a=0.5, b=0.8)
    iso = IsotonicCalibrator.fit(z_val, y_val)
    grid = np.linspace(-6, 6, 200)
    assert np.all(np.diff(iso.predict(grid)) >= 0)
    assert ece(iso.predict(z_test), p_true) < 0.02


def test_platt_needs_both_classes() -> None:
    with pytest.raises(ValueError):
        PlattCalibrator.fit(np.array([0.1, 0.2]), np.array([1, 1]))


def test_reliability_diagram_png(tmp_path) -> None:
    z, y, _ = _distorted(5_000, 6, a=0.5, b=0.0)
    path = plot_reliability({"raw": (sigmoid(z), y)}, tmp_path / "rel.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000
