"""Raw-id <-> contiguous-index maps: the one place that owns id spaces.

KuaiRec ids (``user_id``, ``video_id``) are sparse integers. Models index
embeddings by contiguous ``idx`` in ``[0, n)``. An :class:`IdMap` is built once
by the preprocessing job (sorted raw ids, so it is deterministic), written as
Parquet (``raw_id:int64, idx:int32``) and read back by every later stage.

Example::

    >>> m = IdMap.from_raw(np.array([30, 10, 20, 10]))
    >>> m.to_idx(np.array([10, 30])).tolist()
    [0, 2]
    >>> m.to_idx(np.array([99])).tolist()  # unknown raw id
    [-1]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

UNKNOWN = -1  # index returned for a raw id that is not in the map


@dataclass(frozen=True)
class IdMap:
    """Sorted unique raw ids; ``idx`` of a raw id is its position in ``raw_ids``.

    Attributes:
        raw_ids: ``(n,)`` int64, strictly increasing.
    """

    raw_ids: np.ndarray

    def __post_init__(self) -> None:
        r = np.asarray(self.raw_ids, dtype=np.int64)
        if r.ndim != 1 or (r.size > 1 and not np.all(r[1:] > r[:-1])):
            raise ValueError("IdMap.raw_ids must be a strictly increasing 1-D array")
        object.__setattr__(self, "raw_ids", r)

    @classmethod
    def from_raw(cls, raw: np.ndarray) -> "IdMap":
        """Build from any array of raw ids (duplicates allowed)."""
        return cls(np.unique(np.asarray(raw, dtype=np.int64)))

    def __len__(self) -> int:
        return int(self.raw_ids.size)

    def to_idx(self, raw: np.ndarray) -> np.ndarray:
        """Map raw ids ``(m,)`` to int32 indices ``(m,)``; unknown ids give ``UNKNOWN`` (-1)."""
        raw = np.asarray(raw, dtype=np.int64)
        if len(self) == 0:
            return np.full(raw.shape, UNKNOWN, dtype=np.int32)
        pos = np.minimum(np.searchsorted(self.raw_ids, raw), len(self) - 1)
        return np.where(self.raw_ids[pos] == raw, pos, UNKNOWN).astype(np.int32)

    def to_raw(self, idx: np.ndarray) -> np.ndarray:
        """Map indices ``(m,)`` in ``[0, n)`` back to raw ids ``(m,)``; raises on out-of-range."""
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"index out of range [0, {len(self)})")
        return self.raw_ids[idx]

    def to_table(self) -> pa.Table:
        return pa.table({"raw_id": pa.array(self.raw_ids, pa.int64()),
                         "idx": pa.array(np.arange(len(self), dtype=np.int32), pa.int32())})

    def save(self, path: str | Path) -> None:
        """Write Parquet ``raw_id:int64, idx:int32``."""
        pq.write_table(self.to_table(), str(path))

    @classmethod
    def load(cls, path: str | Path) -> "IdMap":
        t = pq.read_table(str(path))
        idx = t.column("idx").to_numpy()
        if not np.array_equal(idx, np.arange(len(idx))):
            raise ValueError(f"{path}: idx column must be 0..n-1 in order")
        return cls(t.column("raw_id").to_numpy())
