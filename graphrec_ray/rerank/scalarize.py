"""Scalarisation of the ranker's two heads into one final score.

``final = w_engagement * p_click + w_value * e_value_normalised`` with

``e_value_normalised = clip(e_value / value_scale, 0, 1)``.

``e_value`` is the predicted ``E[log1p(min(watch_ratio, value_clip))]``, which lies in ``[0, log1p(value_clip)]``;
``value_scale`` is that upper end (``log1p(5.0)`` by default), so both terms live in ``[0, 1]`` and the weights
are directly comparable. The normalisation is a fixed constant, not per-list min-max, so a candidate's final
score does not depend on which other candidates happen to be in the same request.
"""

from __future__ import annotations

import math

import numpy as np

DEFAULT_VALUE_SCALE = math.log1p(5.0)  # log1p of the default watch-ratio clip used for label_value


def normalise_value(e_value: np.ndarray, value_scale: float = DEFAULT_VALUE_SCALE) -> np.ndarray:
    """``clip(e_value / value_scale, 0, 1)`` as float32, shape unchanged."""
    if value_scale <= 0:
        raise ValueError(f"value_scale must be > 0, got {value_scale}")
    return np.clip(np.asarray(e_value, dtype=np.float32) / np.float32(value_scale), 0.0, 1.0)


def scalarize(p_click: np.ndarray, e_value: np.ndarray, w_engagement: float = 1.0, w_value: float = 1.0,
              value_scale: float = DEFAULT_VALUE_SCALE) -> np.ndarray:
    """Final scores ``(K,)`` float32 from ``p_click`` ``(K,)`` in [0, 1] and ``e_value`` ``(K,)``.

    Args:
        w_engagement: weight of the calibrated click probability (default 1.0).
        w_value: weight of the normalised expected value (default 1.0).
        value_scale: ``e_value`` that maps to 1.0 (default ``log1p(5)``).
    """
    p = np.asarray(p_click, dtype=np.float32)
    v = normalise_value(e_value, value_scale)
    if p.shape != v.shape:
        raise ValueError(f"p_click {p.shape} and e_value {v.shape} must have the same shape")
    return (np.float32(w_engagement) * p + np.float32(w_value) * v).astype(np.float32)
