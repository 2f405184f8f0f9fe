"""Item exposure propensities for inverse-propensity scoring (IPS), estimated from the training split.

Smoothed, power-law popularity model (Steck 2011; Yang et al., RecSys 2018)::

    p_i = clip( ((c_i + s) / (max_j c_j + s)) ** power, clip_min, 1 )

with ``c_i`` the number of training interactions of item ``i``, ``s`` the additive smoothing, ``power`` in
``(0, 1]`` flattening the popularity curve, and ``clip_min`` bounding the IPS weight ``1 / p`` by
``1 / clip_min``. The most exposed item has propensity 1; an item never seen in training gets
``(s / (max c + s)) ** power`` (or ``clip_min``).
"""

from __future__ import annotations

import numpy as np


def item_counts(item_idx: np.ndarray, n_items: int) -> np.ndarray:
    """``(n_items,)`` int64 number of rows per item for ``(n,)`` item indices in ``[0, n_items)``."""
    idx = np.asarray(item_idx, dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= n_items):
        raise ValueError(f"item_idx out of range [0, {n_items})")
    return np.bincount(idx, minlength=n_items).astype(np.int64)


def item_propensity(counts: np.ndarray, smoothing: float = 1.0, power: float = 0.5,
                    clip_min: float = 0.01) -> np.ndarray:
    """Propensities ``(n_items,)`` float64 in ``[clip_min, 1]`` from per-item counts ``(n_items,)``.

    Args:
        counts: exposures per item in the training split (``>= 0``).
        smoothing: additive smoothing ``s`` (default 1.0); ``0`` with an all-zero ``counts`` is an error.
        power: popularity exponent (default 0.5).
        clip_min: lower clip (default 0.01), i.e. IPS weights at most 100.
    """
    c = np.asarray(counts, dtype=np.float64)
    if c.size == 0:
        return np.zeros(0, dtype=np.float64)
    denom = float(c.max()) + smoothing
    if denom <= 0:
        raise ValueError("item_propensity: all counts are zero and smoothing is 0")
    p = ((c + smoothing) / denom) ** power
    return np.clip(p, clip_min, 1.0)
