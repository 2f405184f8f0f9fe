"""IdMap: contiguous, sorted, round-trips, unknown ids flagged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graphrec_ray.ids import UNKNOWN, IdMap


def test_round_trip_and_unknown(tmp_path: Path) -> None:
    m = IdMap.from_raw(np.array([500, 7, 42, 7, 500]))
    assert m.raw_ids.tolist() == [7, 42, 500]
    idx = m.to_idx(np.array([42, 7, 500, 8, 1000, -3]))
    assert idx.tolist() == [1, 0, 2, UNKNOWN, UNKNOWN, UNKNOWN]
    assert m.to_raw(np.array([2, 0])).tolist() == [500, 7]
    m.save(tmp_path / "m.parquet")
    assert np.array_equal(IdMap.load(tmp_path / "m.parquet").raw_ids, m.raw_ids)


def test_empty_and_out_of_range() -> None:
    assert IdMap.from_raw(np.array([], dtype=np.int64)).to_idx(np.array([1])).tolist() == [UNKNOWN]
    with pytest.raises(IndexError):
        IdMap.from_raw(np.array([1, 2])).to_raw(np.array([2]))
    with pytest.raises(ValueError):
        IdMap(np.array([3, 1]))
