"""validate_batch: one reason per broken row, in the documented order; typed values of valid rows."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from graphrec_ray.preprocess.validate import REASONS, raw_json, reason_names, validate_batch
from graphrec_ray.sources.kuairec import INTERACTION_COLUMNS

GOOD = {"user_id": "7", "video_id": "42", "play_duration": "5000", "video_duration": "10000",
        "time": "2020-07-05 05:27:48.378", "date": "20200705", "timestamp": "1593898068.378", "watch_ratio": "0.5"}


def batch(rows: list[dict[str, str]], drop: tuple[str, ...] = ()) -> pa.Table:
    cols = {c: pa.array([r[c] for r in rows], pa.string()) for c in INTERACTION_COLUMNS if c not in drop}
    cols["row_number"] = pa.array(np.arange(len(rows)), pa.int64())
    return pa.table(cols)


def row(**changes: str) -> dict[str, str]:
    return {**GOOD, **changes}


# (changed fields, expected reason or None for valid)
CASES: list[tuple[dict[str, str], str | None]] = [
    ({}, None),
    ({"date": "20200705.0"}, None),  # pandas writes date as float in small_matrix.csv
    ({"play_duration": "5000.0", "video_duration": "10000.0"}, None),  # integral floats accepted
    ({"play_duration": "0", "watch_ratio": "0.0"}, None),  # an instant skip is a valid view
    ({"date": ""}, None),  # date is optional (timestamp is authoritative)
    ({"user_id": ""}, "missing_value"),
    ({"video_duration": "NaN"}, "missing_value"),
    ({"video_id": "abc"}, "bad_type"),
    ({"play_duration": "12.5", "watch_ratio": "0.00125"}, "bad_type"),
    ({"timestamp": "yesterday"}, "bad_type"),
    ({"date": "2020-07-05"}, "bad_type"),
    ({"date": "20201399"}, "bad_type"),
    ({"watch_ratio": "0,5"}, "bad_type"),
    ({"user_id": "-3"}, "negative_id"),
    ({"time": "", "date": "", "timestamp": ""}, "missing_timestamp"),
    ({"timestamp": "-1.0"}, "timestamp_out_of_range"),
    ({"timestamp": "inf"}, "timestamp_out_of_range"),
    ({"play_duration": "-5", "watch_ratio": "-0.0005"}, "negative_duration"),
    ({"video_duration": "0", "watch_ratio": "inf"}, "zero_video_duration"),
    ({"watch_ratio": ""}, "nan_watch_ratio"),
    ({"watch_ratio": "nan"}, "nan_watch_ratio"),
    ({"play_duration": "20000000", "watch_ratio": "2000.0"}, "watch_ratio_out_of_range"),
    ({"watch_ratio": "inf"}, "watch_ratio_out_of_range"),
    ({"watch_ratio": "0.9"}, "inconsistent_watch_ratio"),  # 5000 / 10000 = 0.5
    ({"video_id": "x", "play_duration": "-1"}, "bad_type"),  # first reason in the documented order wins
]


def test_each_broken_row_gets_its_reason_and_valid_rows_pass() -> None:
    typed, reason = validate_batch(batch([row(**c) for c, _ in CASES]), watch_ratio_max=1000.0,
                                   watch_ratio_tolerance=0.01)
    got = [None if r == 0 else REASONS[r - 1] for r in reason]
    assert got == [want for _, want in CASES]
    assert typed.num_rows == len(CASES)
    assert typed.column("row_number").to_pylist() == list(range(len(CASES)))


def test_typed_values_of_valid_rows() -> None:
    typed, reason = validate_batch(batch([row(), row(date="20200705.0", play_duration="5000.0", video_duration="10000.0"),
                                          row(date="")]))
    assert (reason == 0).all()
    t = typed.to_pydict()
    assert t["user_id"] == [7, 7, 7] and t["video_id"] == [42, 42, 42]
    assert t["play_duration"] == [5000] * 3 and t["video_duration"] == [10000] * 3
    assert t["date"] == [20200705, 20200705, None]
    assert t["timestamp"] == [1593898068.378] * 3
    assert t["watch_ratio"] == [0.5] * 3


def test_missing_column_quarantines_every_row() -> None:
    typed, reason = validate_batch(batch([row(), row()], drop=("watch_ratio",)))
    assert reason_names(reason) == ["missing_column", "missing_column"]
    assert typed.column("row_number").to_pylist() == [0, 1]


def test_allow_no_timestamp_keeps_rows_with_null_time() -> None:
    rows = [row(time="", date="", timestamp=""), row()]
    _, strict = validate_batch(batch(rows))
    typed, lenient = validate_batch(batch(rows), allow_no_timestamp=True)
    assert reason_names(strict[strict > 0]) == ["missing_timestamp"]
    assert (lenient == 0).all()
    assert typed.column("timestamp").to_pylist() == [None, 1593898068.378]
    assert typed.column("date").to_pylist() == [None, 20200705]


def test_tolerance_below_zero_turns_the_consistency_check_off() -> None:
    _, reason = validate_batch(batch([row(watch_ratio="0.9")]), watch_ratio_tolerance=-1.0)
    assert (reason == 0).all()


def test_regression_slow_path_parses_good_rows_like_fast_path() -> None:
    """Bug guarded: one unparsable value switches a column to the regex path; good rows must parse the same."""
    clean = [row(user_id=str(u), timestamp=f"{1593898068.378 + u}") for u in range(5)]
    dirty = clean + [row(user_id="x1", timestamp="t")]
    t1, r1 = validate_batch(batch(clean))
    t2, r2 = validate_batch(batch(dirty))
    assert (r1 == 0).all() and reason_names(r2[r2 > 0]) == ["bad_type"]
    for c in ("user_id", "timestamp", "watch_ratio", "date"):
        assert t2.column(c).to_pylist()[:5] == t1.column(c).to_pylist()


def test_raw_json_keeps_original_strings() -> None:
    b = batch([row(), row(video_id="abc", watch_ratio="")])
    (doc,) = raw_json(b, np.array([1]))
    assert json.loads(doc) == {**GOOD, "video_id": "abc", "watch_ratio": ""}


def test_batch_without_row_number_is_rejected() -> None:
    with pytest.raises(ValueError, match="row_number"):
        validate_batch(batch([row()]).drop_columns(["row_number"]))
