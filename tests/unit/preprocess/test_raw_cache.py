"""CSV -> string Parquet cache: row numbers survive malformed lines, shards, reuse and invalidation."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import graphrec_ray.preprocess.raw_cache as raw_cache
from graphrec_ray.preprocess.raw_cache import ensure_cache, read_rows
from tests.unit.preprocess.kuairec_rows import HEADER, T0, line, write


def _lines(n: int) -> list[str]:
    return [line(u, 100 + u, 1000, 2000, T0 + u) for u in range(n)]


def _all_rows(cache: raw_cache.RawCache) -> pa.Table:
    return pa.concat_tables([pq.read_table(s) for s in cache.shards])


def test_row_numbers_skip_malformed_lines_across_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(raw_cache, "_BLOCK_BYTES", 256)  # many small CSV blocks
    lines = _lines(40)
    bad_at = [0, 7, 8, 21, 39, 41]
    for i in bad_at:
        lines.insert(i, "1,2,3" if i != 21 else "")  # too few fields; 21 is an empty line
    csv = write(tmp_path / "big_matrix.csv", lines)
    cache = ensure_cache(csv, tmp_path / "cache", shard_rows=7)
    # the empty line is read as a row of empty fields (validation quarantines it): numbering stays aligned
    malformed = [i for i in bad_at if i != 21]
    assert cache.n_rows == 46 and cache.n_malformed == 5 and len(cache.shards) > 3
    rows = _all_rows(cache)
    assert rows.column("row_number").to_pylist() == [i for i in range(46) if i not in malformed]
    # each good row's user id tells which original line it was
    users = rows.column("user_id").to_pylist()
    assert users[18] == "" and [int(u) for u in users[:18] + users[19:]] == list(range(40))
    m = cache.read_malformed()
    assert m.column("row_number").to_pylist() == malformed
    assert set(m.column("text").to_pylist()) == {"1,2,3"}


def test_cache_is_reused_and_rebuilt_when_the_csv_changes(tmp_path: Path) -> None:
    csv = write(tmp_path / "small_matrix.csv", _lines(5))
    first = ensure_cache(csv, tmp_path / "cache")
    stamp = first.directory / "_stamp.json"
    before = stamp.stat().st_mtime_ns
    assert ensure_cache(csv, tmp_path / "cache").shards == first.shards
    assert stamp.stat().st_mtime_ns == before  # not converted again
    write(csv, _lines(7))
    os.utime(csv, ns=(before + 10**9, before + 10**9))
    again = ensure_cache(csv, tmp_path / "cache")
    assert again.n_rows == 7 and _all_rows(again).num_rows == 7


def test_header_only_file_and_read_rows(tmp_path: Path) -> None:
    empty = ensure_cache(write(tmp_path / "e.csv", []), tmp_path / "cache")
    assert empty.n_rows == 0 and len(empty.shards) == 1 and _all_rows(empty).num_rows == 0
    cache = ensure_cache(write(tmp_path / "big_matrix.csv", _lines(10)), tmp_path / "cache", shard_rows=3)
    got = read_rows(cache, np.array([8, 1, 5]))
    assert got.column("row_number").to_pylist() == [8, 1, 5]
    assert got.column("user_id").to_pylist() == ["8", "1", "5"]


def test_utf8_bom_in_the_header_is_tolerated(tmp_path: Path) -> None:
    csv = tmp_path / "big_matrix.csv"
    csv.write_bytes(b"\xef\xbb\xbf" + ("\n".join([HEADER, *_lines(2)]) + "\n").encode())
    cache = ensure_cache(csv, tmp_path / "cache")
    assert cache.columns[0] == "user_id" and _all_rows(cache).column("user_id").to_pylist() == ["0", "1"]
