"""Validate raw KuaiRec interaction rows: raw string columns in, (typed valid rows, quarantined rows) out.

Pure and vectorised (pyarrow + numpy), so the plain pass and Ray Data ``map_batches`` run the same code.
Input is a batch whose published columns (``user_id, video_id, play_duration, video_duration, time, date,
timestamp, watch_ratio``) are *strings exactly as in the CSV* plus ``row_number`` (0-based data row in the
source file, added by :mod:`graphrec_ray.preprocess.raw_cache`). Strings are parsed here, so a bad value quarantines
its row instead of failing the whole file.

Every rejected row gets exactly one reason, the first that applies in this order (stable codes, counted in the
manifest):

==========================  =====================================================================
``missing_column``          a published column is absent from the file (every row of the batch)
``missing_value``           empty / NaN ``user_id``, ``video_id``, ``play_duration`` or ``video_duration``
``bad_type``                a present value does not parse (ids / durations integral, timestamp / watch_ratio
                            numeric, ``date`` an 8-digit yyyymmdd, e.g. ``"20200705"`` or ``"20200705.0"``)
``negative_id``             ``user_id`` or ``video_id`` < 0
``missing_timestamp``       empty / NaN ``timestamp`` (kept instead when ``allow_no_timestamp``)
``timestamp_out_of_range``  ``timestamp`` negative or infinite
``negative_duration``       ``play_duration`` < 0 or ``video_duration`` < 0
``zero_video_duration``     ``video_duration`` == 0 (watch ratio undefined)
``nan_watch_ratio``         empty / NaN ``watch_ratio``
``watch_ratio_out_of_range`` ``watch_ratio`` < 0, infinite, or above the hard limit ``watch_ratio_max``
``inconsistent_watch_ratio`` ``|watch_ratio - play/video| > tol * max(1, watch_ratio)`` (only when tol >= 0)
==========================  =====================================================================

Two more codes are assigned outside this module: ``malformed_row`` (wrong number of fields, by the CSV cache)
and ``exact_duplicate`` (by :mod:`graphrec_ray.preprocess.duplicates` under the ``quarantine`` policy).
The ``time`` column is carried for the quarantine record only: ``timestamp`` is the authoritative time.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from graphrec_ray.sources.kuairec import INTERACTION_COLUMNS


#: Reason codes, in the order they are checked (index + 1 is the internal code).
REASONS: tuple[str, ...] = (
    "missing_column", "missing_value", "bad_type", "negative_id", "missing_timestamp", "timestamp_out_of_range",
    "negative_duration", "zero_video_duration", "nan_watch_ratio", "watch_ratio_out_of_range",
    "inconsistent_watch_ratio",
)
MALFORMED_ROW = "malformed_row"  # wrong field count; assigned by the CSV -> Parquet cache
EXACT_DUPLICATE = "exact_duplicate"  # assigned by the duplicate policy "quarantine"
ALL_REASONS: tuple[str, ...] = (MALFORMED_ROW, *REASONS, EXACT_DUPLICATE)

#: Typed columns of a validated row (before labels and id maps); ``row_number`` ties it to the source file.
VALIDATED = pa.schema(
    [
        pa.field("row_number", pa.int64()),
        pa.field("user_id", pa.int64()),
        pa.field("video_id", pa.int64()),
        pa.field("timestamp", pa.float64()),
        pa.field("date", pa.int32()),
        pa.field("play_duration", pa.int64()),
        pa.field("video_duration", pa.int64()),
        pa.field("watch_ratio", pa.float64()),
    ]
)

#: Strings read as "no value" (what pandas writes for NaN, plus common spellings).
_MISSING = pa.array(["", "nan", "NaN", "NAN", "NA", "N/A", "null", "NULL", "None", "none"], pa.string())
_NUMBER_RE = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_INF_RE = r"^[+-]?(?i:inf|infinity)$"
_MAX_EXACT = float(2**53)


def _code(reason: str) -> int:
    return REASONS.index(reason) + 1


def _missing_mask(arr: pa.Array) -> np.ndarray:
    """``(n,)`` bool: null or a NaN-like spelling."""
    m = pc.fill_null(pc.is_in(arr, value_set=_MISSING), True)
    return np.asarray(m.to_numpy(zero_copy_only=False), dtype=bool)


def _parse_float(arr: pa.Array, missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parse strings to float64. Returns ``(values, bad)``; missing entries are NaN and not bad.

    Fast path: one vectorised cast; only a batch that holds an unparsable string takes the regex path.
    """
    n = len(arr)
    clean = pc.if_else(pa.array(missing), pa.scalar(None, pa.string()), arr)
    try:
        vals = pc.cast(clean, pa.float64()).to_numpy(zero_copy_only=False)
        vals = np.asarray(vals, dtype=np.float64)
        # "nan" spellings are in _MISSING; the cast accepts only numbers / inf here.
        return np.where(missing, np.nan, vals), np.zeros(n, dtype=bool)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    is_num = pc.fill_null(pc.or_(pc.match_substring_regex(clean, _NUMBER_RE),
                                 pc.match_substring_regex(clean, _INF_RE)), False)
    ok = np.asarray(is_num.to_numpy(zero_copy_only=False), dtype=bool)
    safe = pc.if_else(is_num, clean, pa.scalar("0", pa.string()))
    vals = np.asarray(pc.cast(safe, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    vals = np.where(ok, vals, np.nan)
    return vals, ~ok & ~missing


def _parse_int(arr: pa.Array, missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parse strings to int64 (integral floats such as ``"13838.0"`` accepted). Returns ``(values, bad)``."""
    n = len(arr)
    clean = pc.if_else(pa.array(missing), pa.scalar(None, pa.string()), arr)
    try:
        vals = pc.cast(clean, pa.int64()).fill_null(0).to_numpy()
        return np.asarray(vals, dtype=np.int64), np.zeros(n, dtype=bool)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    f, bad = _parse_float(arr, missing)
    present = ~missing & ~bad
    integral = np.isfinite(f) & (np.abs(f) < _MAX_EXACT)
    with np.errstate(invalid="ignore"):
        integral &= np.floor(np.where(integral, f, 0.0)) == np.where(integral, f, 0.0)
    bad = bad | (present & ~integral)
    vals = np.where(present & integral, f, 0.0).astype(np.int64)
    return vals, bad


def _valid_date(d: np.ndarray) -> np.ndarray:
    """``(n,)`` bool: yyyymmdd with a plausible year, month 1-12 and day 1-31."""
    y, m, day = d // 10000, (d // 100) % 100, d % 100
    return (y >= 1900) & (y <= 2999) & (m >= 1) & (m <= 12) & (day >= 1) & (day <= 31)


def raw_json(batch: pa.Table, rows: np.ndarray) -> list[str]:
    """JSON objects of the original string fields of ``rows`` (positions in ``batch``), ``row_number`` excluded."""
    cols = [c for c in batch.column_names if c != "row_number"]
    sub = batch.select(cols).take(pa.array(rows, pa.int64())).to_pylist()
    return [json.dumps(r, ensure_ascii=True) for r in sub]


def validate_batch(
    batch: pa.Table,
    *,
    allow_no_timestamp: bool = False,
    watch_ratio_max: float = 1000.0,
    watch_ratio_tolerance: float = 0.01,
) -> tuple[pa.Table, np.ndarray]:
    """Parse and check one batch of raw rows.

    Args:
        batch: ``(n,)`` rows; published columns as strings (any may be absent), plus ``row_number:int64``.
        allow_no_timestamp: keep rows without a timestamp (``timestamp``/``date`` null) instead of quarantining.
        watch_ratio_max: hard upper limit (default 1000.0); larger ratios are ``watch_ratio_out_of_range``.
        watch_ratio_tolerance: ``>= 0`` enables the ``inconsistent_watch_ratio`` check (default 0.01); < 0: off.

    Returns:
        ``(typed, reason)``: ``typed`` is a :data:`VALIDATED` table with one row per input row (values of rejected
        rows are placeholders), ``reason`` is ``(n,)`` int8: 0 for a valid row, else ``REASONS[code - 1]``.
    """
    n = batch.num_rows
    if "row_number" not in batch.column_names:
        raise ValueError("validate_batch needs a row_number column (see graphrec_ray.preprocess.raw_cache)")
    row_number = batch.column("row_number").combine_chunks()
    reason = np.zeros(n, dtype=np.int8)

    def flag(mask: np.ndarray, name: str) -> None:
        reason[(reason == 0) & mask] = _code(name)

    absent = [c for c in INTERACTION_COLUMNS if c not in batch.column_names]
    if absent:
        reason[:] = _code("missing_column")
        empty = {f.name: pa.nulls(n, f.type) for f in VALIDATED}
        empty["row_number"] = row_number
        return pa.table(empty, schema=VALIDATED), reason

    col = {c: batch.column(c).combine_chunks() for c in INTERACTION_COLUMNS}
    miss = {c: _missing_mask(col[c]) for c in INTERACTION_COLUMNS if c != "time"}
    for c in ("user_id", "video_id", "play_duration", "video_duration"):
        flag(miss[c], "missing_value")

    ints = {c: _parse_int(col[c], miss[c]) for c in ("user_id", "video_id", "play_duration", "video_duration")}
    ts, ts_bad = _parse_float(col["timestamp"], miss["timestamp"])
    wr, wr_bad = _parse_float(col["watch_ratio"], miss["watch_ratio"])
    # any other NaN spelling that the cast accepted counts as missing too
    miss["timestamp"] |= np.isnan(ts) & ~ts_bad
    miss["watch_ratio"] |= np.isnan(wr) & ~wr_bad
    date_f, date_bad = _parse_int(col["date"], miss["date"])
    date_present = ~miss["date"] & ~date_bad
    date_bad = date_bad | (date_present & ~_valid_date(date_f))
    flag(ints["user_id"][1] | ints["video_id"][1] | ints["play_duration"][1] | ints["video_duration"][1]
         | ts_bad | wr_bad | date_bad, "bad_type")

    uid, vid = ints["user_id"][0], ints["video_id"][0]
    play, vdur = ints["play_duration"][0], ints["video_duration"][0]
    flag((uid < 0) | (vid < 0), "negative_id")
    if not allow_no_timestamp:
        flag(miss["timestamp"], "missing_timestamp")
    with np.errstate(invalid="ignore"):
        flag(~miss["timestamp"] & ((ts < 0) | ~np.isfinite(ts)), "timestamp_out_of_range")
        flag((play < 0) | (vdur < 0), "negative_duration")
        flag(vdur == 0, "zero_video_duration")
        flag(miss["watch_ratio"], "nan_watch_ratio")
        flag((wr < 0) | ~np.isfinite(wr) | (wr > watch_ratio_max), "watch_ratio_out_of_range")
        if watch_ratio_tolerance >= 0:
            ratio = play / np.where(vdur > 0, vdur, 1).astype(np.float64)
            flag(np.abs(wr - ratio) > watch_ratio_tolerance * np.maximum(1.0, wr), "inconsistent_watch_ratio")

    ts_null = miss["timestamp"]
    typed = pa.table(
        {
            "row_number": row_number,
            "user_id": pa.array(uid, pa.int64()),
            "video_id": pa.array(vid, pa.int64()),
            "timestamp": pa.array(ts, pa.float64(), mask=ts_null),
            "date": pa.array(np.where(date_present & ~date_bad, date_f, 0).astype(np.int32), pa.int32(),
                             mask=~(date_present & ~date_bad)),
            "play_duration": pa.array(play, pa.int64()),
            "video_duration": pa.array(vdur, pa.int64()),
            "watch_ratio": pa.array(np.where(miss["watch_ratio"], 0.0, wr), pa.float64()),
        },
        schema=VALIDATED,
    )
    return typed, reason


def reason_names(codes: np.ndarray) -> list[str]:
    """Map nonzero int codes from :func:`validate_batch` to reason strings."""
    return [REASONS[int(c) - 1] for c in codes]
