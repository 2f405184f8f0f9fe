"""Metrics rows against hand-computed values; per-event true probabilities from a dense oracle."""

from __future__ import annotations

import numpy as np
import pytest

from graphrec_ray.calibration.platt import sigmoid
from graphrec_ray.ranking.evaluate import metrics_row, to_markdown, true_click_prob, write_csv


def test_metrics_row_hand_computed(tmp_path) -> None:
    logit = np.array([-2.0, -1.0, 1.0, 2.0])
    y = np.array([0, 1, 0, 1])
    value, label_value = np.array([0.5, 1.0, 1.5, 2.0]), np.array([0.5, 0.0, 1.5, 1.0])
    p_true = np.array([0.1, 0.3, 0.6, 0.9])
    row = metrics_row("mmoe", "test", logit, value, y, label_value, lambda z: sigmoid(z / 2), n_bins=1,
                      p_true=p_true)
    assert row["auc"] == pytest.approx(0.75)  # pairs (pos, neg): (-1,-2) ok, (-1,1) bad, (2,-2) ok, (2,1) ok
    assert row["mse"] == pytest.approx(0.5) and row["rmse"] == pytest.approx(np.sqrt(0.5))
    raw, cal = sigmoid(logit), sigmoid(logit / 2)
    assert row["brier_raw"] == pytest.approx(np.mean((raw - y) ** 2))
    assert row["ece_width_cal"] == pytest.approx(abs(cal.mean() - 0.5))  # one bin: |mean p - mean y|
    assert row["true_mae_raw"] == pytest.approx(np.mean(np.abs(raw - p_true)))
    write_csv([row], tmp_path / "m.csv")
    header = (tmp_path / "m.csv").read_text().splitlines()[0].split(",")
    assert header[:4] == ["model", "split", "n", "auc"] and "true_ece_cal" in header
    assert "| mmoe | test | 4 | 0.7500 |" in to_markdown([row])


def test_true_click_prob_matches_dense_lookup() -> None:
    rng = np.random.default_rng(0)
    users, items = np.array([3, 10, 11, 40]), np.array([5, 6, 90])
    table = rng.random((41, 91))
    u, v = rng.choice(users, 200), rng.choice(items, 200)
    oracle = lambda uu, vv: table[np.ix_(uu, vv)]  # noqa: E731 - (U, I) block like GroundTruth.p_click
    np.testing.assert_array_equal(true_click_prob(oracle, u, v, chunk_users=3), table[u, v])
