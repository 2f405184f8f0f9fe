"""Pareto fronts of reranking settings: non-dominated points, the knee, the hypervolume.

All objectives are MAXIMISED (engagement, value, diversity, coverage: more is better). Points are ``(n, k)``
arrays, one row per setting, one column per objective.

* **Non-dominated**: row ``i`` is on the front when no row ``j`` is ``>=`` in every objective and ``>`` in at
  least one. Exact duplicates of a front point are all kept (:func:`non_dominated_mask`, via ``moocore``).
* **Knee** (:func:`knee_index`): normalise each objective to ``[0, 1]`` by its min and max over the front; the
  knee is the front point with the largest sum of normalised objectives, i.e. the one farthest above the
  hyperplane ``x_1 + ... + x_k = 1`` through the per-objective extremes. With two objectives this is exactly the
  point farthest from the straight line between the two extreme points of the front (the usual "elbow"). Ties
  go to the lowest row index.
* **Hypervolume** (:func:`hypervolume`, computed by ``moocore``, never by hand): the volume of objective space
  dominated by the front and bounded below by a FIXED reference point. The default reference is the origin,
  :data:`DEFAULT_REFERENCE` = 0 in every objective, meaning "no clicks, no value, no diversity": every objective
  here is non-negative, and a fixed origin (not one derived from the points) keeps hypervolumes of different
  sweeps on the same truth comparable. It is in objective units (e.g. click-rate x value x diversity).

Example::

    >>> pts = np.array([[1.0, 0.2], [0.2, 1.0], [0.7, 0.7], [0.5, 0.5]])
    >>> non_dominated_mask(pts).tolist()
    [True, True, True, False]
    >>> int(knee_index(pts))
    2
    >>> round(hypervolume(pts), 2)  # 0.7 * 0.7 + 2 * (0.3 * 0.2)
    0.61
"""

from __future__ import annotations

import numpy as np

__all__ = ["DEFAULT_REFERENCE", "non_dominated_mask", "knee_index", "hypervolume"]

DEFAULT_REFERENCE = 0.0  # fixed reference point for every objective: "no clicks, no value, no diversity"


def _points(points: np.ndarray) -> np.ndarray:
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 1:
        raise ValueError(f"points must be (n, k) with k >= 1, got shape {p.shape}")
    if not np.isfinite(p).all():
        raise ValueError("points must be finite")
    return p


def non_dominated_mask(points: np.ndarray) -> np.ndarray:
    """``(n,)`` bool: True for rows of ``points`` ``(n, k)`` that no other row dominates (maximisation).

    Duplicated front points are all True; an empty input gives an empty mask.
    """
    p = _points(points) if np.size(points) else np.zeros((0, 1))
    if p.shape[0] == 0:
        return np.zeros(0, dtype=bool)
    import moocore

    return np.asarray(moocore.is_nondominated(p, maximise=True, keep_weakly=True), dtype=bool)


def knee_index(points: np.ndarray, mask: np.ndarray | None = None) -> int:
    """Row index of the knee among the non-dominated rows of ``points`` ``(n, k)`` (see the module docstring).

    Args:
        points: objective values, maximised.
        mask: ``(n,)`` precomputed non-dominated mask (default: :func:`non_dominated_mask`).

    Raises:
        ValueError: no points.
    """
    p = _points(points)
    if p.shape[0] == 0:
        raise ValueError("no points")
    front = np.flatnonzero(non_dominated_mask(p) if mask is None else np.asarray(mask, dtype=bool))
    f = p[front]
    lo, hi = f.min(axis=0), f.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    score = ((f - lo) / span).sum(axis=1)
    return int(front[int(np.argmax(score))])  # argmax: first maximum = lowest row index among ties


def hypervolume(points: np.ndarray, reference: float | np.ndarray = DEFAULT_REFERENCE) -> float:
    """Hypervolume dominated by ``points`` ``(n, k)`` above ``reference`` (maximisation), via ``moocore``.

    Args:
        points: objective values; rows that do not strictly exceed the reference in every objective add nothing.
        reference: scalar (same in every objective) or ``(k,)`` fixed reference point (default 0).
    """
    p = _points(points)
    ref = np.broadcast_to(np.asarray(reference, dtype=np.float64), (p.shape[1],))
    p = p[(p > ref).all(axis=1)]
    if p.shape[0] == 0:
        return 0.0
    import moocore

    return float(moocore.hypervolume(p, ref=ref, maximise=True))
