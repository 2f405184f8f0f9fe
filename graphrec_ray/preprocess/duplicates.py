"""Canonical row order, exact duplicates and repeated (user, video) views.

KuaiRec's ``big_matrix`` holds exact duplicate rows (every field equal) and repeated views of the same
(user, video) pair at different times. Both are counted; what happens to them is declared in
:class:`graphrec_ray.preprocess.config.PreprocessConfig`:

- ``exact_duplicates``: ``drop`` (keep the first copy, count the rest as removed by policy), ``quarantine``
  (the extra copies go to the quarantine as ``exact_duplicate``) or ``keep``;
- ``repeated_views``: ``keep_all`` (each view is an event), ``keep_last`` (latest view per pair) or
  ``max_watch_ratio`` (the view with the largest watch ratio; ties: the latest).

All functions work on tables in the canonical order of :func:`sort_rows`, which makes them deterministic
whatever order the rows arrived in (plain pass or Ray Data blocks).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: Total order: time first (the published order), then every content field, then the source row number, so
#: exact duplicates are adjacent and the first copy is the one with the smallest row number.
SORT_KEYS: tuple[str, ...] = ("timestamp", "user_id", "video_id", "play_duration", "video_duration",
                              "watch_ratio", "date", "row_number")
#: Fields compared to detect exact duplicates (the labels derive from them).
CONTENT_KEYS: tuple[str, ...] = ("timestamp", "user_id", "video_id", "play_duration", "video_duration",
                                 "watch_ratio", "date")


def sort_order(table: pa.Table) -> pa.Array:
    """``(n,)`` indices putting ``table`` in canonical order: ascending :data:`SORT_KEYS`, nulls last."""
    return pc.sort_indices(table, sort_keys=[(k, "ascending", "at_end") for k in SORT_KEYS])


def sort_rows(table: pa.Table) -> pa.Table:
    """Rows of ``table`` in canonical order (see :func:`sort_order`)."""
    if table.num_rows == 0:
        return table
    return table.take(sort_order(table))


def _column_equal_prev(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """``(n - 1,)`` bool: row ``i + 1`` equals row ``i`` (nulls equal nulls, NaN never occurs here)."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    vals = arr.fill_null(0).to_numpy(zero_copy_only=False)
    same_val = vals[1:] == vals[:-1]
    return np.where(valid[1:] & valid[:-1], same_val, valid[1:] == valid[:-1])


def exact_duplicate_mask(table: pa.Table, order: pa.Array | None = None) -> np.ndarray:
    """``(n,)`` bool in canonical order, True for every copy of a row after its first.

    Args:
        table: rows in canonical order (:func:`sort_rows`), or in any order when ``order`` is given.
        order: ``(n,)`` indices from :func:`sort_order`; the content columns are then put in order one at a time,
            so the whole table is never copied (the mask refers to positions in ``order``).
    """
    n = table.num_rows
    out = np.zeros(n, dtype=bool)
    if n < 2:
        return out
    same = np.ones(n - 1, dtype=bool)
    for k in CONTENT_KEYS:
        col = table.column(k)
        same &= _column_equal_prev(col if order is None else col.take(order))
    out[1:] = same
    return out


def repeated_views(pair_key: np.ndarray, watch_ratio: np.ndarray,
                   policy: str = "keep_all") -> tuple[np.ndarray, int, int]:
    """Find repeated (user, video) views and apply the declared policy.

    Args:
        pair_key: ``(n,)`` int64, one value per (user, video) pair (e.g. ``user_idx * n_items + item_idx``),
            rows in :func:`sort_rows` order (so a later position is a later view).
        watch_ratio: ``(n,)`` float64, used by ``max_watch_ratio``.
        policy: ``keep_all`` (default), ``keep_last`` or ``max_watch_ratio``.

    Returns:
        ``(keep, n_repeated_pairs, n_extra_views)``: ``keep`` ``(n,)`` bool rows kept by the policy; pairs seen
        more than once; rows beyond the first view of their pair.
    """
    key = np.asarray(pair_key, dtype=np.int64)
    n = key.size
    if n == 0:
        return np.ones(0, dtype=bool), 0, 0
    if policy == "max_watch_ratio":
        order = np.lexsort((np.arange(n, dtype=np.int64), np.asarray(watch_ratio, dtype=np.float64), key))
    elif policy in ("keep_last", "keep_all"):
        order = np.argsort(key, kind="stable")  # stable: within a pair, later rows stay later
    else:
        raise ValueError(f"unknown repeated_views policy {policy!r}")
    k = key[order]
    last = np.ones(n, dtype=bool)
    last[:-1] = k[1:] != k[:-1]
    first = np.ones(n, dtype=bool)
    first[1:] = k[1:] != k[:-1]
    n_pairs = int(last.sum())
    group_sizes = np.diff(np.flatnonzero(np.append(first, True)))
    n_repeated_pairs = int((group_sizes > 1).sum())
    n_extra = n - n_pairs
    if policy == "keep_all":
        return np.ones(n, dtype=bool), n_repeated_pairs, n_extra
    keep = np.zeros(n, dtype=bool)
    keep[order[last]] = True
    return keep, n_repeated_pairs, n_extra
