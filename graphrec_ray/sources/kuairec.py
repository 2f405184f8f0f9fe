"""KuaiRec 2.0 as published: file names, exact column lists, typed side-table readers.

The real archive (``graphrec download``) and the simulator (``graphrec simulate``)
both produce a folder holding the six files below, with the columns in exactly
this order (https://kuairec.com, "Data Descriptions"; the counts agree with
public audits of the 2.0 release: 8 + 8 + 2 + 31 + 58 + 2 columns)::

    data_dir/
      big_matrix.csv          user_id,video_id,play_duration,video_duration,time,date,timestamp,watch_ratio
      small_matrix.csv        (same columns; ~3.9% rows with empty time/date/timestamp)
      item_categories.csv     video_id,feat            feat is a list literal: "[27, 9]"
      user_features.csv       31 columns, onehot_feat0..17 (some empty = NaN)
      item_daily_features.csv 58 columns, one row per (video_id, date)
      social_network.csv      user_id,friend_list       friend_list is a list literal

Published number formats (pandas ``to_csv``): durations are integer ms; ``time`` is
``"2020-07-05 00:08:23.438"`` in Beijing time (UTC+8); ``date`` is yyyymmdd;
``timestamp`` is float Unix seconds; NaN is an empty field. A numeric column that
holds a NaN is written as floats, so ``date`` in ``small_matrix.csv`` reads
``20200705.0`` and a ``onehot_feat4`` with NaN reads ``1.0``; the readers here
accept both spellings.

The side-table readers return typed Arrow tables; the quirks they met (malformed
list literals, empty counters) are counted in the table's schema metadata and
read back with :func:`quirk_counts`. The interaction logs are validated and
quarantined row by row by the preprocessing job, which uses
:data:`INTERACTION_COLUMNS` and :data:`INTERACTION_READ_TYPES` from here.

Nothing here evaluates text: list literals go through the strict
:func:`parse_int_list` (digits, commas, brackets and spaces only).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from graphrec_ray.errors import DataError

__all__ = [
    "BIG_MATRIX", "SMALL_MATRIX", "ITEM_CATEGORIES", "USER_FEATURES", "ITEM_DAILY_FEATURES", "SOCIAL_NETWORK",
    "ALL_FILES", "INTERACTION_FILES", "INTERACTION_COLUMNS", "INTERACTION_TYPES", "INTERACTION_READ_TYPES",
    "ITEM_CATEGORIES_COLUMNS", "USER_FEATURES_COLUMNS", "USER_FEATURES_TYPES", "ITEM_DAILY_FEATURES_COLUMNS",
    "ITEM_DAILY_FEATURES_TYPES", "SOCIAL_NETWORK_COLUMNS", "COLUMNS", "TIMEZONE_OFFSET_S", "KuaiRecFiles",
    "check_layout", "parse_int_list", "parse_feat_list", "read_item_categories", "read_user_features",
    "read_item_daily_features", "read_social_network", "quirk_counts", "interaction_convert_options",
    "read_interactions", "csv_header", "format_csv_rows",
]

# ---------------------------------------------------------------------------------------------- file names
BIG_MATRIX = "big_matrix.csv"
SMALL_MATRIX = "small_matrix.csv"
ITEM_CATEGORIES = "item_categories.csv"
USER_FEATURES = "user_features.csv"
ITEM_DAILY_FEATURES = "item_daily_features.csv"
SOCIAL_NETWORK = "social_network.csv"
ALL_FILES: tuple[str, ...] = (BIG_MATRIX, SMALL_MATRIX, ITEM_CATEGORIES, USER_FEATURES, ITEM_DAILY_FEATURES,
                              SOCIAL_NETWORK)
INTERACTION_FILES: tuple[str, ...] = (BIG_MATRIX, SMALL_MATRIX)

#: KuaiRec ``time`` / ``date`` are Beijing local time: ``time = UTC(timestamp) + 8 h``.
TIMEZONE_OFFSET_S = 8 * 3600

# ---------------------------------------------------------------------------------------------- columns
INTERACTION_COLUMNS: tuple[str, ...] = (
    "user_id", "video_id", "play_duration", "video_duration", "time", "date", "timestamp", "watch_ratio",
)
#: Logical types of the interaction columns as documented by KuaiRec (durations in ms).
INTERACTION_TYPES: dict[str, pa.DataType] = {
    "user_id": pa.int64(),
    "video_id": pa.int64(),
    "play_duration": pa.int64(),    # ms
    "video_duration": pa.int64(),   # ms
    "time": pa.string(),            # "2020-07-05 00:08:23.438", UTC+8
    "date": pa.int64(),             # yyyymmdd
    "timestamp": pa.float64(),      # Unix seconds
    "watch_ratio": pa.float64(),    # play_duration / video_duration
}
#: Types to hand to ``pyarrow.csv`` (or ``ray.data.read_csv``) so both matrices parse:
#: ``date`` is float64 because ``small_matrix.csv`` spells it ``20200705.0`` (column with NaN).
INTERACTION_READ_TYPES: dict[str, pa.DataType] = {**INTERACTION_TYPES, "date": pa.float64()}

ITEM_CATEGORIES_COLUMNS: tuple[str, ...] = ("video_id", "feat")

USER_FEATURES_COLUMNS: tuple[str, ...] = (
    "user_id", "user_active_degree", "is_lowactive_period", "is_live_streamer", "is_video_author",
    "follow_user_num", "follow_user_num_range", "fans_user_num", "fans_user_num_range",
    "friend_user_num", "friend_user_num_range", "register_days", "register_days_range",
    *(f"onehot_feat{i}" for i in range(18)),
)
USER_FEATURES_TYPES: dict[str, pa.DataType] = {
    "user_id": pa.int64(),
    "user_active_degree": pa.string(),      # e.g. "high_active", "full_active", "middle_active", "UNKNOWN"
    "is_lowactive_period": pa.int8(),
    "is_live_streamer": pa.int8(),
    "is_video_author": pa.int8(),
    "follow_user_num": pa.int64(),
    "follow_user_num_range": pa.string(),   # bucket label, e.g. "(10,50]"
    "fans_user_num": pa.int64(),
    "fans_user_num_range": pa.string(),
    "friend_user_num": pa.int64(),
    "friend_user_num_range": pa.string(),
    "register_days": pa.int64(),
    "register_days_range": pa.string(),
    **{f"onehot_feat{i}": pa.int64() for i in range(18)},  # categorical codes; some NaN -> null
}

_DAILY_HEAD: tuple[tuple[str, pa.DataType], ...] = (
    ("video_id", pa.int64()),
    ("date", pa.int32()),              # yyyymmdd
    ("author_id", pa.int64()),
    ("video_type", pa.string()),       # "NORMAL" / "AD"
    ("upload_dt", pa.string()),        # upload day, "2020-03-30"
    ("upload_type", pa.string()),
    ("visible_status", pa.string()),
    ("video_duration", pa.float64()),  # ms; NaN in ~3% of rows
    ("video_width", pa.int64()),
    ("video_height", pa.int64()),
    ("music_id", pa.int64()),
    ("video_tag_id", pa.int64()),
    ("video_tag_name", pa.string()),   # NaN in ~9% of rows
)
#: The 45 daily counters, in published order (``play_progress`` is a float mean).
DAILY_COUNTER_COLUMNS: tuple[str, ...] = (
    "show_cnt", "show_user_num", "play_cnt", "play_user_num", "play_duration",
    "complete_play_cnt", "complete_play_user_num", "valid_play_cnt", "valid_play_user_num",
    "long_time_play_cnt", "long_time_play_user_num", "short_time_play_cnt", "short_time_play_user_num",
    "play_progress", "comment_stay_duration",
    "like_cnt", "like_user_num", "click_like_cnt", "double_click_cnt", "cancel_like_cnt", "cancel_like_user_num",
    "comment_cnt", "comment_user_num", "direct_comment_cnt", "reply_comment_cnt", "delete_comment_cnt",
    "delete_comment_user_num", "comment_like_cnt", "comment_like_user_num",
    "follow_cnt", "follow_user_num", "cancel_follow_cnt", "cancel_follow_user_num",
    "share_cnt", "share_user_num", "download_cnt", "download_user_num", "report_cnt", "report_user_num",
    "reduce_similar_cnt", "reduce_similar_user_num",
    "collect_cnt", "collect_user_num", "cancel_collect_cnt", "cancel_collect_user_num",  # NaN in ~20% of rows
)
ITEM_DAILY_FEATURES_COLUMNS: tuple[str, ...] = tuple(n for n, _ in _DAILY_HEAD) + DAILY_COUNTER_COLUMNS
ITEM_DAILY_FEATURES_TYPES: dict[str, pa.DataType] = {
    **dict(_DAILY_HEAD),
    **{c: (pa.float64() if c == "play_progress" else pa.int64()) for c in DAILY_COUNTER_COLUMNS},
}

SOCIAL_NETWORK_COLUMNS: tuple[str, ...] = ("user_id", "friend_list")

#: file name -> column names in published order.
COLUMNS: dict[str, tuple[str, ...]] = {
    BIG_MATRIX: INTERACTION_COLUMNS,
    SMALL_MATRIX: INTERACTION_COLUMNS,
    ITEM_CATEGORIES: ITEM_CATEGORIES_COLUMNS,
    USER_FEATURES: USER_FEATURES_COLUMNS,
    ITEM_DAILY_FEATURES: ITEM_DAILY_FEATURES_COLUMNS,
    SOCIAL_NETWORK: SOCIAL_NETWORK_COLUMNS,
}

_QUIRKS_KEY = b"graphrec.quirks"


# ---------------------------------------------------------------------------------------------- layout
@dataclass(frozen=True)
class KuaiRecFiles:
    """Paths of the six KuaiRec files inside ``root`` (checked to exist by :func:`check_layout`)."""

    root: Path

    @property
    def big_matrix(self) -> Path:
        return self.root / BIG_MATRIX

    @property
    def small_matrix(self) -> Path:
        return self.root / SMALL_MATRIX

    @property
    def item_categories(self) -> Path:
        return self.root / ITEM_CATEGORIES

    @property
    def user_features(self) -> Path:
        return self.root / USER_FEATURES

    @property
    def item_daily_features(self) -> Path:
        return self.root / ITEM_DAILY_FEATURES

    @property
    def social_network(self) -> Path:
        return self.root / SOCIAL_NETWORK

    def path(self, name: str) -> Path:
        """Path of one file by its published name, e.g. ``files.path("big_matrix.csv")``."""
        if name not in COLUMNS:
            raise KeyError(f"not a KuaiRec file: {name}")
        return self.root / name


def check_layout(data_dir: str | Path, require: Iterable[str] = ALL_FILES) -> KuaiRecFiles:
    """Check that ``data_dir`` holds the KuaiRec files named in ``require`` (default: all six).

    Also accepts the folder layout of the real archive: when ``data_dir`` itself lacks the files
    but ``data_dir/data`` or ``data_dir/KuaiRec 2.0/data`` has them, that folder is used.

    Raises:
        DataError: one line naming the folder, the missing files and the two ways to get data.
    """
    root = Path(data_dir)
    required = tuple(require)
    unknown = [n for n in required if n not in COLUMNS]
    if unknown:
        raise KeyError(f"not KuaiRec files: {unknown}")
    for cand in (root, root / "data", root / "KuaiRec 2.0" / "data", root / "KuaiRec" / "data"):
        if cand.is_dir() and all((cand / n).is_file() for n in required):
            return KuaiRecFiles(cand)
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist: generate data with `graphrec simulate --out {root}` "
                        f"or fetch the real KuaiRec 2.0 with `graphrec download --out {root}`")
    missing = [n for n in required if not (root / n).is_file()]
    raise DataError(f"data folder {root} is missing {', '.join(missing)}: generate data with "
                    f"`graphrec simulate --out {root}` or fetch the real KuaiRec 2.0 with "
                    f"`graphrec download --out {root}`")


def _check_header(path: Path, expected: tuple[str, ...]) -> None:
    with open(path, "rb") as f:
        first = f.readline().decode("utf-8-sig").strip()
    got = [c.strip().strip('"') for c in first.split(",")]
    missing = [c for c in expected if c not in got]
    if missing:
        raise DataError(f"{path.name}: missing column(s) {', '.join(missing)} (header has {len(got)} columns)")


# ---------------------------------------------------------------------------------------------- list literals
_INT_LIST = re.compile(r"^\[\s*(?:-?\d+(?:\s*,\s*-?\d+)*\s*,?)?\s*\]$")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def parse_int_list(s: str | None, lo: int = _INT64_MIN, hi: int = _INT64_MAX) -> list[int] | None:
    """Strictly parse a list literal of integers such as ``"[27, 9]"``; ``None`` when malformed.

    Accepts ``[]``, optional spaces and one trailing comma; rejects anything else (quotes, floats,
    nested lists, expressions) and values outside ``[lo, hi]``. Never evaluates the text.

    >>> parse_int_list("[27, 9]"), parse_int_list("[]"), parse_int_list("[1,]")
    ([27, 9], [], [1])
    >>> parse_int_list("[1, 2"), parse_int_list("__import__('os')"), parse_int_list(None)
    (None, None, None)
    """
    if s is None or not isinstance(s, str) or len(s) > 1_000_000:
        return None
    text = s.strip()
    if not _INT_LIST.match(text):
        return None
    inner = text[1:-1].strip().rstrip(",").strip()
    if not inner:
        return []
    out = [int(tok) for tok in inner.split(",")]
    if any(v < lo or v > hi for v in out):
        return None
    return out


def parse_feat_list(s: str | None) -> list[int] | None:
    """Parse an ``item_categories.feat`` literal (``"[27, 9]"``) into int32-range ints; ``None`` if malformed."""
    return parse_int_list(s, lo=-(2**31), hi=2**31 - 1)


# ---------------------------------------------------------------------------------------------- readers
def _read_csv_as(path: Path, expected: tuple[str, ...], read_types: dict[str, pa.DataType]) -> pa.Table:
    """Read ``path`` with ``read_types``; a file whose values don't parse is a one-line DataError."""
    _check_header(path, expected)
    conv = pcsv.ConvertOptions(column_types=read_types, strings_can_be_null=True,
                               include_columns=list(expected))
    try:
        return pcsv.read_csv(path, convert_options=conv)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataError(f"{path.name}: cannot parse ({str(exc).splitlines()[0]})") from None


def _cast_integral(table: pa.Table, name: str, target: pa.DataType, path: Path) -> pa.Array:
    """Cast a float64 column read from ``1`` / ``1.0`` / empty spellings to the integer ``target``."""
    col = table.column(name)
    try:
        return pc.cast(col, target, safe=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        raise DataError(f"{path.name}: column {name} holds non-integer values") from None


def _with_quirks(table: pa.Table, quirks: dict[str, int]) -> pa.Table:
    meta = dict(table.schema.metadata or {})
    meta[_QUIRKS_KEY] = json.dumps(quirks, sort_keys=True).encode()
    return table.replace_schema_metadata(meta)


def quirk_counts(table: pa.Table) -> dict[str, int]:
    """Quirk counts a reader recorded on ``table`` (e.g. ``{"malformed_feat": 2, "null_collect_cnt": 10}``).

    Keys are stable: ``malformed_<column>`` for list literals that failed :func:`parse_int_list`
    (the value becomes null), ``null_<column>`` for empty (NaN) numeric fields. Zero counts are kept.
    """
    raw = (table.schema.metadata or {}).get(_QUIRKS_KEY)
    return json.loads(raw) if raw else {}


def _read_list_table(path: Path, id_col: str, list_col: str, elem: pa.DataType,
                     lo: int, hi: int) -> tuple[pa.Table, int]:
    raw = _read_csv_as(path, (id_col, list_col), {id_col: pa.int64(), list_col: pa.string()})
    texts = raw.column(list_col).to_pylist()
    parsed = [parse_int_list(t, lo, hi) for t in texts]
    n_bad = sum(p is None for p in parsed)
    table = pa.table({id_col: raw.column(id_col), list_col: pa.array(parsed, type=pa.list_(elem))})
    return table, n_bad


def read_item_categories(data_dir: str | Path) -> pa.Table:
    """Read ``item_categories.csv`` as ``video_id:int64, feat:list<int32>``.

    Malformed ``feat`` literals become null (the row is kept) and are counted as
    ``quirk_counts(t)["malformed_feat"]``.
    """
    path = check_layout(data_dir, [ITEM_CATEGORIES]).item_categories
    table, n_bad = _read_list_table(path, "video_id", "feat", pa.int32(), -(2**31), 2**31 - 1)
    return _with_quirks(table, {"malformed_feat": n_bad, "rows": table.num_rows})


def read_social_network(data_dir: str | Path) -> pa.Table:
    """Read ``social_network.csv`` as ``user_id:int64, friend_list:list<int64>``.

    Malformed ``friend_list`` literals become null and are counted as ``malformed_friend_list``.
    """
    path = check_layout(data_dir, [SOCIAL_NETWORK]).social_network
    table, n_bad = _read_list_table(path, "user_id", "friend_list", pa.int64(), _INT64_MIN, _INT64_MAX)
    return _with_quirks(table, {"malformed_friend_list": n_bad, "rows": table.num_rows})


def _read_typed(path: Path, columns: tuple[str, ...], types: dict[str, pa.DataType]) -> pa.Table:
    """Read with integer columns parsed as float64 (to accept ``1.0``), then cast; count nulls."""
    read_types = {c: (pa.float64() if pa.types.is_integer(t) else t) for c, t in types.items()}
    raw = _read_csv_as(path, columns, read_types)
    arrays, quirks = [], {}
    for name in columns:
        target = types[name]
        arr = _cast_integral(raw, name, target, path) if pa.types.is_integer(target) else raw.column(name)
        arrays.append(arr)
        if not pa.types.is_string(target):
            quirks[f"null_{name}"] = int(arr.null_count)
    table = pa.Table.from_arrays(arrays, schema=pa.schema([pa.field(c, types[c]) for c in columns]))
    quirks["rows"] = table.num_rows
    return _with_quirks(table, quirks)


def read_user_features(data_dir: str | Path) -> pa.Table:
    """Read ``user_features.csv`` (31 columns) with :data:`USER_FEATURES_TYPES`; NaN stays null.

    ``quirk_counts(t)["null_onehot_feat4"]`` etc. count the empty fields per numeric column.
    """
    path = check_layout(data_dir, [USER_FEATURES]).user_features
    return _read_typed(path, USER_FEATURES_COLUMNS, USER_FEATURES_TYPES)


def read_item_daily_features(data_dir: str | Path) -> pa.Table:
    """Read ``item_daily_features.csv`` (58 columns) with :data:`ITEM_DAILY_FEATURES_TYPES`.

    ``date`` is int32 yyyymmdd; counters are int64 with NaN kept as null and counted as
    ``null_<counter>`` (the published file has ~20% empty ``collect_*`` counters).
    """
    path = check_layout(data_dir, [ITEM_DAILY_FEATURES]).item_daily_features
    return _read_typed(path, ITEM_DAILY_FEATURES_COLUMNS, ITEM_DAILY_FEATURES_TYPES)


def interaction_convert_options(include_columns: bool = True) -> pcsv.ConvertOptions:
    """``pyarrow.csv.ConvertOptions`` for ``big_matrix.csv`` / ``small_matrix.csv`` (types as published).

    Empty ``time`` becomes null; ``date`` parses as float64 (see :data:`INTERACTION_READ_TYPES`).
    Works with ``ray.data.read_csv(..., convert_options=...)`` too.
    """
    return pcsv.ConvertOptions(column_types=INTERACTION_READ_TYPES, strings_can_be_null=True,
                               include_columns=list(INTERACTION_COLUMNS) if include_columns else None)


def read_interactions(path: str | Path) -> pa.Table:
    """Read one interaction CSV into Arrow with :data:`INTERACTION_READ_TYPES` (no validation).

    For tests and small files; the preprocessing job does per-row validation and quarantine.
    Raises :class:`DataError` for a missing column or unparsable values.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"interaction file {p} does not exist")
    return _read_csv_as(p, INTERACTION_COLUMNS, INTERACTION_READ_TYPES)


# ---------------------------------------------------------------------------------------------- writing
def csv_header(columns: Iterable[str]) -> bytes:
    """The header line, unquoted, as pandas writes it: ``b"user_id,video_id,...\\n"``."""
    return (",".join(columns) + "\n").encode()


def _float_text(arr: pa.Array) -> pa.Array:
    """Shortest round-trip text of float64 values, pandas style (``1.0`` keeps its ``.0``)."""
    s = pc.cast(arr, pa.string())
    integral = pc.match_substring_regex(s, r"^-?\d+$")
    return pc.if_else(integral, pc.binary_join_element_wise(s, pa.scalar(".0"), ""), s)


def _quote_needed(s: pa.Array) -> pa.Array:
    """CSV-quote strings that contain a comma, quote or newline (pandas QUOTE_MINIMAL)."""
    needs = pc.match_substring_regex(s, r'[,"\n\r]')
    escaped = pc.replace_substring(s, '"', '""')
    quoted = pc.binary_join_element_wise(pa.scalar('"'), escaped, pa.scalar('"'), "")
    return pc.if_else(needs, quoted, s)


def format_csv_rows(table: pa.Table) -> bytes:
    """Format ``table`` rows as CSV text in the published style (no header).

    Integers print as integers, float64 columns print shortest round-trip text with a ``.0`` on
    integral values (what pandas writes for a column holding NaN), strings are quoted only when
    needed, nulls are empty fields, lines end with ``\\n``. Vectorised (pyarrow compute).
    """
    if table.num_rows == 0:
        return b""
    cols = []
    for col in table.columns:
        arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        if pa.types.is_floating(arr.type):
            text = _float_text(pc.cast(arr, pa.float64()))
        elif pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
            text = _quote_needed(pc.cast(arr, pa.string()))
        else:
            text = pc.cast(arr, pa.string())
        cols.append(text)
    # the last argument of binary_join_element_wise is the separator.
    line = pc.binary_join_element_wise(*cols, ",", null_handling="replace", null_replacement="")
    line = pc.binary_join_element_wise(line, pa.scalar(""), "\n")  # line + "\n" + ""
    line = pc.cast(line, pa.large_string())
    offsets = np.frombuffer(line.buffers()[1], dtype=np.int64)[line.offset: line.offset + len(line) + 1]
    return bytes(memoryview(line.buffers()[2])[int(offsets[0]): int(offsets[-1])])
