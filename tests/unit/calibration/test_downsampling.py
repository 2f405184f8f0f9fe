"""Negative down-sampling correction and the validation-only choice of the serving calibrator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graphrec_ray.calibration.downsampling import DownsamplingCalibrator, correct_downsampling
from graphrec_ray.calibration.factory import fit_calibrator, load_calibrator
from graphrec_ray.calibration.metrics import ece
from graphrec_ray.calibration.platt import sigmoid
from graphrec_ray.calibration.select import select_calibrator


def test_correction_recovers_known_probabilities_from_a_downsampled_population() -> None:
    """20 groups with known click probability; keep every positive and 10% of the negatives; the click rate
    observed in the sampled data is inflated, and the correction brings it back to the known value."""
    rng = np.random.default_rng(0)
    p_true = np.linspace(0.01, 0.6, 20)
    w = 0.1
    n = 200_000  # per group
    q_obs, p_hat = [], []
    for p in p_true:
        y = rng.random(n) < p
        kept = y | (rng.random(n) < w)
        q = y[kept].mean()  # the best model on the sampled data predicts this
        q_obs.append(q)
        p_hat.append(correct_downsampling(np.array([q]), w)[0])
    q_obs, p_hat = np.array(q_obs), np.array(p_hat)
    assert np.all(q_obs > p_true + 0.05)  # the sampled rate is far off (p=0.01 -> q~0.09)
    np.testing.assert_allclose(p_hat, p_true, rtol=0.05, atol=2e-3)


def test_calibrator_is_the_formula_in_logit_space_and_round_trips(tmp_path: Path) -> None:
    z = np.linspace(-6, 6, 41)
    cal = DownsamplingCalibrator(0.25)
    np.testing.assert_allclose(cal.predict(z), correct_downsampling(sigmoid(z), 0.25), rtol=1e-12)
    np.testing.assert_allclose(DownsamplingCalibrator(1.0).predict(z), sigmoid(z))  # rate 1: identity
    cal.save(tmp_path / "c.json")
    assert load_calibrator(tmp_path / "c.json") == cal
    assert fit_calibrator("downsampling", z, z > 0, neg_sample_rate=0.25) == cal
    with pytest.raises(ValueError):
        DownsamplingCalibrator(0.0)


def _sampled_model_logits(n: int, w: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logits of a model that is exact on data with negatives kept at rate w, on UNSAMPLED rows."""
    rng = np.random.default_rng(seed)
    true_logit = rng.normal(-2.0, 1.2, n)
    p = sigmoid(true_logit)
    y = (rng.random(n) < p).astype(float)
    return true_logit - np.log(w), y, p  # odds inflated by 1/w


def test_selection_on_validation_avoids_the_raw_model_and_each_fix_beats_raw_on_held_out() -> None:
    w = 0.1
    z_val, y_val, _ = _sampled_model_logits(40_000, w, 1)
    z_test, y_test, p_test = _sampled_model_logits(40_000, w, 2)
    cal, scores = select_calibrator(z_val, y_val, neg_sample_rate=1.0)  # the identity is a candidate
    assert scores["downsampling"] > scores["platt"] + 0.05  # rate 1 = raw: much worse log-loss
    assert cal.method in ("platt", "isotonic")
    _, scores_w = select_calibrator(z_val, y_val, neg_sample_rate=w)  # now the exact correction is one option
    assert scores_w["downsampling"] == pytest.approx(scores_w["platt"], abs=2e-3)
    raw = sigmoid(z_test)
    for method in ("platt", "isotonic", "downsampling"):
        fixed = fit_calibrator(method, z_val, y_val, neg_sample_rate=w).predict(z_test)
        for targets in (y_test, p_test):
            assert ece(fixed, targets) < 0.02 < 0.1 < ece(raw, targets), (method, ece(fixed, targets))
