"""Item propensities: smoothed power-law popularity, clipped, from training counts."""

from __future__ import annotations

import numpy as np
import pytest

from graphrec_ray.preprocess.propensity import item_counts, item_propensity


def test_counts_include_unseen_items() -> None:
    assert item_counts(np.array([0, 2, 2, 3, 3, 3]), 5).tolist() == [1, 0, 2, 3, 0]
    with pytest.raises(ValueError):
        item_counts(np.array([5]), 5)


def test_formula_known_answer() -> None:
    counts = np.array([99, 24, 0, 8])
    p = item_propensity(counts, smoothing=1.0, power=0.5, clip_min=0.05)
    np.testing.assert_allclose(p, [1.0, 0.5, 0.1, 0.3])  # sqrt((c + 1) / 100)


def test_clip_bounds_ips_weights_and_order_follows_popularity() -> None:
    counts = np.array([10000, 100, 1, 0])
    p = item_propensity(counts, smoothing=1.0, power=1.0, clip_min=0.01)
    assert p.max() == 1.0 and p.min() == 0.01
    assert (np.diff(p) <= 0).all()
    assert (1.0 / p).max() == pytest.approx(100.0)


def test_all_zero_counts_need_smoothing() -> None:
    np.testing.assert_allclose(item_propensity(np.zeros(3), smoothing=1.0), [1.0, 1.0, 1.0])
    with pytest.raises(ValueError):
        item_propensity(np.zeros(3), smoothing=0.0)
