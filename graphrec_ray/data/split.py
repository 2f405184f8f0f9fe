"""Temporal train / validation / test split of ``big_matrix`` by timestamp.

Two cut rules (``PreprocessConfig.split_by``):

- ``"rows"``: with the ``n`` timestamps sorted, the validation cut is the timestamp at position
  ``floor(train_frac * n)`` and the test cut the one at ``floor((train_frac + val_frac) * n)``;
- ``"time"``: the cuts sit at the same fractions of the time range ``[t_min, t_max]``.

A row goes to train when ``timestamp < val_cut``, to val when ``val_cut <= timestamp < test_cut`` and to test
otherwise, so ties at a cut never straddle it and no val/test timestamp lies before the training cut.

Rows without a timestamp (kept only with ``allow_no_timestamp``) are assigned by a seeded hash of
``(user_id, video_id)`` with the same fractions: deterministic, and all views of a pair land in one split.
"""

from __future__ import annotations

import numpy as np

TRAIN, VAL, TEST = 0, 1, 2
SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")


def temporal_cuts(ts_sorted: np.ndarray, train_frac: float = 0.8, val_frac: float = 0.1,
                  by: str = "rows") -> tuple[float, float]:
    """Validation and test cut timestamps.

    Args:
        ts_sorted: ``(n,)`` float64 finite timestamps in ascending order, ``n >= 1``.
        train_frac: share before the validation cut (default 0.8).
        val_frac: share between the cuts (default 0.1); test gets the rest.
        by: ``"rows"`` (timestamp quantiles of rows, default) or ``"time"`` (fractions of the time range).

    Returns:
        ``(val_cut, test_cut)`` with ``val_cut <= test_cut``.
    """
    ts = np.asarray(ts_sorted, dtype=np.float64)
    n = ts.size
    if n == 0:
        raise ValueError("temporal_cuts needs at least one timestamp")
    if by == "rows":
        i_val = min(int(np.floor(train_frac * n)), n - 1)
        i_test = min(int(np.floor((train_frac + val_frac) * n)), n - 1)
        return float(ts[i_val]), float(ts[i_test])
    if by == "time":
        lo, hi = float(ts[0]), float(ts[-1])
        return lo + train_frac * (hi - lo), lo + (train_frac + val_frac) * (hi - lo)
    raise ValueError(f"unknown split rule {by!r} (expected 'rows' or 'time')")


def assign_by_time(ts: np.ndarray, val_cut: float, test_cut: float) -> np.ndarray:
    """``(n,)`` int8 split codes (TRAIN/VAL/TEST) for ``(n,)`` finite timestamps."""
    ts = np.asarray(ts, dtype=np.float64)
    out = np.full(ts.shape, VAL, dtype=np.int8)
    out[ts < val_cut] = TRAIN
    out[ts >= test_cut] = TEST
    return out


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        x += np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def assign_by_hash(user_id: np.ndarray, video_id: np.ndarray, seed: int = 0, train_frac: float = 0.8,
                   val_frac: float = 0.1) -> np.ndarray:
    """Deterministic split codes for rows without a timestamp (the ``--allow-no-timestamp`` fallback).

    Args:
        user_id, video_id: ``(n,)`` raw int ids; the same pair always gets the same split.
        seed: hash seed (default 0).
        train_frac, val_frac: expected shares of train and val (defaults 0.8, 0.1).

    Returns:
        ``(n,)`` int8 codes TRAIN/VAL/TEST.
    """
    u = np.asarray(user_id, dtype=np.int64).astype(np.uint64)
    v = np.asarray(video_id, dtype=np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        h = _splitmix64(_splitmix64(u ^ np.uint64(seed & 0xFFFFFFFFFFFFFFFF)) ^ v)
    x = (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    out = np.full(x.shape, TEST, dtype=np.int8)
    out[x < train_frac + val_frac] = VAL
    out[x < train_frac] = TRAIN
    return out
