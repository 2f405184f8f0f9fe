"""Canonical order, exact duplicates and the repeated-view policies."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from graphrec_ray.preprocess.duplicates import exact_duplicate_mask, repeated_views, sort_order, sort_rows


def table(rows: list[tuple]) -> pa.Table:
    names = ["row_number", "user_id", "video_id", "timestamp", "date", "play_duration", "video_duration",
             "watch_ratio"]
    cols = list(zip(*rows))
    types = [pa.int64(), pa.int64(), pa.int64(), pa.float64(), pa.int32(), pa.int64(), pa.int64(), pa.float64()]
    return pa.table({n: pa.array(c, t) for n, c, t in zip(names, cols, types)})


def test_sort_puts_null_timestamps_last_and_ties_by_row_number() -> None:
    t = table([(0, 1, 1, None, None, 1, 2, 0.5), (1, 2, 1, 5.0, 1, 1, 2, 0.5), (2, 1, 1, 5.0, 1, 1, 2, 0.5),
               (3, 1, 1, 5.0, 1, 1, 2, 0.5), (4, 1, 1, 1.0, 1, 1, 2, 0.5)])
    assert sort_rows(t).column("row_number").to_pylist() == [4, 2, 3, 1, 0]


def test_exact_duplicates_are_flagged_after_their_first_copy() -> None:
    a = (0, 1, 10, 5.0, 20200705, 100, 200, 0.5)
    b = (1, 1, 10, 5.0, 20200705, 150, 200, 0.75)  # same pair and time, different content: not a duplicate
    rows = [a, b, (2, *a[1:]), (3, *b[1:]), (4, *a[1:]), (5, 1, 10, None, None, 1, 2, 0.5),
            (6, 1, 10, None, None, 1, 2, 0.5)]
    s = sort_rows(table(rows))
    dup = exact_duplicate_mask(s)
    assert sorted(s.column("row_number").to_numpy()[dup].tolist()) == [2, 3, 4, 6]


def test_repeated_view_policies() -> None:
    key = np.array([7, 3, 7, 7, 3, 9])  # rows already in time order
    wr = np.array([0.2, 0.5, 0.9, 0.1, 0.4, 1.0])
    keep, pairs, extra = repeated_views(key, wr, "keep_all")
    assert keep.all() and pairs == 2 and extra == 3
    keep, _, _ = repeated_views(key, wr, "keep_last")
    assert np.flatnonzero(keep).tolist() == [3, 4, 5]
    keep, _, _ = repeated_views(key, wr, "max_watch_ratio")
    assert np.flatnonzero(keep).tolist() == [1, 2, 5]
    keep, _, _ = repeated_views(np.array([1, 1]), np.array([0.5, 0.5]), "max_watch_ratio")
    assert keep.tolist() == [False, True]  # tie: the latest view
    with pytest.raises(ValueError):
        repeated_views(key, wr, "keep_first")


def test_mask_from_an_order_equals_mask_of_the_sorted_table() -> None:
    rng = np.random.default_rng(0)
    rows = [(i, int(rng.integers(3)), int(rng.integers(3)), float(rng.integers(4)), 20200705, 1, 2, 0.5)
            for i in range(200)]
    t = table(rows)
    assert np.array_equal(exact_duplicate_mask(t, sort_order(t)), exact_duplicate_mask(sort_rows(t)))
    assert exact_duplicate_mask(t, sort_order(t)).sum() == 200 - len({r[1:] for r in rows})
