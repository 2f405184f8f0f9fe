"""Temporal train / validation / test split of ``big_matrix`` by timestamp, globally or per user.

Two scopes (``PreprocessConfig.split``):

- ``"per_user"`` (default): the cut rule below is applied to each user's own timestamps, so each user's last
  ``1 - train_frac`` of interactions go to val/test (:func:`assign_per_user`). Users with fewer than
  ``min_user_rows`` rows, or whose rows all tie at the cut, stay wholly in training, so every user with enough
  interactions has a training history and every val/test row of a user is strictly later than all of that
  user's training rows. Different users' cuts fall at different dates: a training row of one user may be later
  than a test row of another (the usual leave-last-out trade-off).
- ``"global"``: one cut for all rows (:func:`temporal_cuts` + :func:`assign_by_time`); no val/test row is earlier
  than any training row, but users active only late in the log have no training row at all.

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


def assign_per_user(user: np.ndarray, ts: np.ndarray, train_frac: float = 0.8, val_frac: float = 0.1,
                    by: str = "rows", min_user_rows: int = 10) -> np.ndarray:
    """Per-user temporal split codes: :func:`temporal_cuts` applied to each user's own timestamps.

    Args:
        user: ``(n,)`` int user keys (raw ids or indices), any order.
        ts: ``(n,)`` float64 finite timestamps of the same rows.
        train_frac, val_frac: per-user shares as in :func:`temporal_cuts` (defaults 0.8, 0.1).
        by: ``"rows"`` (default) or ``"time"``, per user.
        min_user_rows: users with fewer rows stay wholly in TRAIN (default 10: at 80/10/10 the fewest rows that
            give every held-out user at least one val and one test row).

    Returns:
        ``(n,)`` int8 codes TRAIN/VAL/TEST in the input row order. For every user, each VAL/TEST timestamp is
        strictly greater than each TRAIN timestamp, and a user with any VAL/TEST row has a TRAIN row.

    Example::

        >>> assign_per_user(np.array([7] * 10 + [8] * 3), np.arange(13.0)).tolist()
        [0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0]
    """
    user = np.asarray(user, dtype=np.int64)
    ts = np.asarray(ts, dtype=np.float64)
    if user.shape != ts.shape:
        raise ValueError(f"user {user.shape} and ts {ts.shape} differ in shape")
    out = np.full(ts.shape, TRAIN, dtype=np.int8)
    if ts.size == 0:
        return out
    if by not in ("rows", "time"):
        raise ValueError(f"unknown split rule {by!r} (expected 'rows' or 'time')")
    order = np.lexsort((ts, user))                       # by user, then time
    u, t = user[order], ts[order]
    first = np.flatnonzero(np.r_[True, u[1:] != u[:-1]])
    n = np.diff(np.r_[first, u.size])                    # rows per user
    row_user = np.repeat(np.arange(first.size), n)       # user number of each sorted row
    if by == "rows":
        i_val = first + np.minimum(np.floor(train_frac * n).astype(np.int64), n - 1)
        i_test = first + np.minimum(np.floor((train_frac + val_frac) * n).astype(np.int64), n - 1)
        val_cut, test_cut = t[i_val], t[i_test]
    else:
        lo, hi = t[first], t[first + n - 1]
        val_cut, test_cut = lo + train_frac * (hi - lo), lo + (train_frac + val_frac) * (hi - lo)
    code = np.full(u.size, VAL, dtype=np.int8)
    code[t < val_cut[row_user]] = TRAIN
    code[t >= test_cut[row_user]] = TEST
    has_train = np.bincount(row_user, weights=(code == TRAIN), minlength=first.size) > 0
    whole = (n < min_user_rows) | ~has_train              # too few rows, or all tied at the cut
    code[whole[row_user]] = TRAIN
    out[order] = code
    return out


def users_without_training(train_users: np.ndarray, eval_users: np.ndarray) -> tuple[int, int]:
    """``(distinct evaluation users, how many of them have no training row)``.

    Args:
        train_users: ``(n,)`` user keys of the training rows.
        eval_users: ``(m,)`` user keys of an evaluation set's rows (val, test or eval_small).
    """
    ev = np.unique(np.asarray(eval_users, dtype=np.int64))
    return int(ev.size), int((~np.isin(ev, np.asarray(train_users, dtype=np.int64))).sum())
