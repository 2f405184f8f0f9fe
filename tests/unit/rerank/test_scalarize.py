"""Scalarisation: the stated formula, the fixed value normalisation, the weights' effect on the order."""

from __future__ import annotations

import math

import numpy as np
import pytest

from graphrec_ray.rerank.scalarize import DEFAULT_VALUE_SCALE, normalise_value, scalarize


def test_formula_with_known_numbers() -> None:
    p = np.array([0.2, 0.9], np.float32)
    v = np.array([DEFAULT_VALUE_SCALE, 0.0], np.float32)
    out = scalarize(p, v, w_engagement=2.0, w_value=0.5)
    np.testing.assert_allclose(out, [2 * 0.2 + 0.5 * 1.0, 2 * 0.9 + 0.0], rtol=1e-6)
    assert DEFAULT_VALUE_SCALE == pytest.approx(math.log1p(5.0))


def test_value_normalisation_is_fixed_and_clipped() -> None:
    v = np.array([-1.0, 0.5, 1.0, 3.0], np.float32)
    np.testing.assert_allclose(normalise_value(v, value_scale=2.0), [0.0, 0.25, 0.5, 1.0])
    # independent of the other candidates in the list (no per-list min-max)
    assert normalise_value(np.array([0.5]), 2.0)[0] == normalise_value(np.array([0.5, 100.0]), 2.0)[0]


def test_weights_move_the_top_item() -> None:
    p = np.array([0.9, 0.1], np.float32)     # item 0: clicky
    v = np.array([0.1, 1.7], np.float32)     # item 1: long watches
    assert int(np.argmax(scalarize(p, v, 1.0, 0.0))) == 0
    assert int(np.argmax(scalarize(p, v, 0.0, 1.0))) == 1


def test_shape_mismatch_and_bad_scale_raise() -> None:
    with pytest.raises(ValueError):
        scalarize(np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError):
        normalise_value(np.zeros(2), 0.0)
