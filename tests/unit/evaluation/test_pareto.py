"""Pareto front, knee and hypervolume on point sets with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from graphrec_ray.evaluation.pareto import hypervolume, knee_index, non_dominated_mask


def test_front_of_a_known_2d_set_keeps_duplicates_and_drops_dominated() -> None:
    pts = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.4, 0.5], [0.5, 0.5], [0.2, 0.2], [1.0, -1.0]])
    np.testing.assert_array_equal(non_dominated_mask(pts), [True, True, True, False, True, False, False])


def test_front_in_3d_sphere_points_survive_interior_points_do_not() -> None:
    rng = np.random.default_rng(0)
    sphere = np.abs(rng.standard_normal((50, 3)))
    sphere /= np.linalg.norm(sphere, axis=1, keepdims=True)
    interior = sphere[:20] * rng.uniform(0.1, 0.95, (20, 1))  # each strictly dominated by its sphere point
    mask = non_dominated_mask(np.vstack([sphere, interior]))
    assert mask[:50].all() and not mask[50:].any()


def test_empty_input_gives_empty_mask() -> None:
    assert non_dominated_mask(np.zeros((0, 3))).shape == (0,)


def test_hypervolume_of_known_sets() -> None:
    assert hypervolume(np.array([[0.5, 0.4, 2.0]])) == pytest.approx(0.4)  # one box: product of coordinates
    stair = np.array([[3.0, 1.0], [2.0, 2.0], [1.0, 3.0]])
    assert hypervolume(stair) == pytest.approx(3 * 1 + 2 * (2 - 1) + 1 * (3 - 2))  # union of the three boxes
    # dominated points and points at or below the reference add nothing
    more = np.vstack([stair, [[1.0, 1.0], [0.0, 5.0], [-1.0, 9.0]]])
    assert hypervolume(more) == pytest.approx(6.0)
    # reference (1, 1): (3, 1) and (1, 3) touch it (no volume), (2, 2) leaves a 1 x 1 box
    assert hypervolume(stair, reference=np.array([1.0, 1.0])) == pytest.approx(1.0)


def test_hypervolume_grows_when_a_point_extends_the_front() -> None:
    base = np.array([[0.9, 0.1, 0.5], [0.1, 0.9, 0.5], [0.5, 0.5, 0.5]])
    assert hypervolume(np.vstack([base, [[0.6, 0.6, 0.6]]])) > hypervolume(base)
    assert hypervolume(np.vstack([base, [[0.4, 0.4, 0.4]]])) == pytest.approx(hypervolume(base))


def test_knee_is_the_bulge_of_a_front_whatever_the_objective_scales() -> None:
    line = np.stack([np.linspace(0, 1, 11), 1 - np.linspace(0, 1, 11)], axis=1)
    pts = np.vstack([line, [[0.3, 0.85]], [[0.2, 0.2]]])  # the bulge at row 11 sits farthest above the line
    assert knee_index(pts) == 11
    scaled = pts * np.array([1.0, 250.0])  # normalisation: units of an objective do not move the knee
    assert knee_index(scaled) == 11


def test_knee_uses_a_given_mask_and_rejects_empty_input() -> None:
    pts = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.6]])
    assert knee_index(pts, mask=np.array([True, True, False])) == 0  # tie between extremes: lowest index
    with pytest.raises(ValueError):
        knee_index(np.zeros((0, 2)))
