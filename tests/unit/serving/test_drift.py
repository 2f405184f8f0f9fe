"""Calibration window: known means over a sliding window of (p_click, clicked) pairs."""

from __future__ import annotations

import numpy as np
import pytest

from graphrec_ray.serving.drift import CalibrationWindow


def test_window_keeps_the_last_pairs_only() -> None:
    w = CalibrationWindow(size=3)
    assert w.summary() == (0.0, 0.0, 0)
    for p, y in ((1.0, True), (0.2, False), (0.4, True), (0.6, False)):  # (1.0, True) leaves the window
        w.add(p, y)
    mean_p, rate, n = w.summary()
    assert n == 3 and mean_p == pytest.approx(0.4) and rate == pytest.approx(1 / 3)


def test_calibrated_stream_has_no_drift_and_overprediction_is_positive() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0.05, 0.6, 20000)
    y = rng.random(p.size) < p
    calibrated, over = CalibrationWindow(20000), CalibrationWindow(20000)
    for pi, yi in zip(p, y):
        calibrated.add(pi, yi)
        over.add(min(1.0, pi + 0.1), yi)
    m, r, _ = calibrated.summary()
    assert abs(m - r) < 0.01
    m2, r2, _ = over.summary()
    assert m2 - r2 == pytest.approx(0.1, abs=0.01)


def test_rejects_probabilities_outside_0_1() -> None:
    with pytest.raises(ValueError, match="p_click"):
        CalibrationWindow().add(1.5, True)
    with pytest.raises(ValueError, match="size"):
        CalibrationWindow(0)
