"""Interaction lists in contiguous id space, as the retrieval models, samplers and metrics consume them.

Loaded from the preprocessing outputs (``INTERACTIONS`` schema, see ``docs/ARCHITECTURE.md``) or built directly
from arrays in tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import scipy.sparse as sp

from graphrec_ray.errors import DataError


@dataclass(frozen=True)
class Interactions:
    """Rows ``(user_idx, item_idx, watch_ratio)`` in contiguous id space.

    Attributes:
        user_idx: ``(N,)`` int64 in ``[0, n_users)``.
        item_idx: ``(N,)`` int64 in ``[0, n_items)``.
        n_users, n_items: sizes of the id spaces (from the id maps, not from these rows).
        watch_ratio: ``(N,)`` float64, or None when only positives are known (then every row is positive).
    """

    user_idx: np.ndarray
    item_idx: np.ndarray
    n_users: int
    n_items: int
    watch_ratio: np.ndarray | None = None

    def __post_init__(self) -> None:
        u = np.asarray(self.user_idx, dtype=np.int64)
        i = np.asarray(self.item_idx, dtype=np.int64)
        if u.shape != i.shape or u.ndim != 1:
            raise ValueError("user_idx and item_idx must be 1-D and of equal length")
        if u.size and (u.min() < 0 or u.max() >= self.n_users or i.min() < 0 or i.max() >= self.n_items):
            raise ValueError(f"indices out of range [0,{self.n_users}) x [0,{self.n_items})")
        object.__setattr__(self, "user_idx", u)
        object.__setattr__(self, "item_idx", i)
        if self.watch_ratio is not None:
            object.__setattr__(self, "watch_ratio", np.asarray(self.watch_ratio, dtype=np.float64))

    def __len__(self) -> int:
        return int(self.user_idx.size)

    def select(self, mask: np.ndarray) -> "Interactions":
        """Rows where ``mask`` (``(N,)`` bool) is true."""
        wr = None if self.watch_ratio is None else self.watch_ratio[mask]
        return Interactions(self.user_idx[mask], self.item_idx[mask], self.n_users, self.n_items, wr)

    def relevant(self, op: str = ">=", threshold: float = 0.5) -> "Interactions":
        """Rows whose watch ratio satisfies ``op threshold`` (``op`` in ``>=``, ``>``); all rows if no ratios."""
        if self.watch_ratio is None:
            return self
        if op == ">=":
            return self.select(self.watch_ratio >= threshold)
        if op == ">":
            return self.select(self.watch_ratio > threshold)
        raise ValueError(f"unknown comparison {op!r}")

    def matrix(self) -> sp.csr_matrix:
        """``(n_users, n_items)`` boolean CSR of the (deduplicated) pairs, sorted indices."""
        m = sp.csr_matrix((np.ones(len(self), dtype=bool), (self.user_idx, self.item_idx)),
                          shape=(self.n_users, self.n_items))
        m.sum_duplicates()
        m.data[:] = True
        m.sort_indices()
        return m

    def item_counts(self) -> np.ndarray:
        """``(n_items,)`` int64 row counts per item."""
        return np.bincount(self.item_idx, minlength=self.n_items).astype(np.int64)


def load_interactions(path: str | Path, n_users: int, n_items: int) -> Interactions:
    """Read ``user_idx``, ``item_idx``, ``watch_ratio`` from an ``INTERACTIONS`` Parquet file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"missing preprocessed split: {path} (run `graphrec preprocess` first)")
    t = pq.read_table(str(path), columns=["user_idx", "item_idx", "watch_ratio"])
    return Interactions(t.column("user_idx").to_numpy().astype(np.int64),
                        t.column("item_idx").to_numpy().astype(np.int64), n_users, n_items,
                        t.column("watch_ratio").to_numpy().astype(np.float64))


def union_matrix(*mats: sp.csr_matrix) -> sp.csr_matrix:
    """Boolean union of same-shape CSR matrices (e.g. train + val positives to exclude at test time)."""
    out = mats[0].astype(bool)
    for m in mats[1:]:
        out = (out + m.astype(bool)).astype(bool)
    out = sp.csr_matrix(out)
    out.sort_indices()
    return out
