"""Interactions in contiguous id space, the seen set, and the one step that removes seen items.

Every stage that ranks items for a user — retrieval's ``recommend``, the evaluation protocols, serving — must
not rank what the user has "already seen". This module is the one home of that rule:

* :class:`Interactions` — rows ``(user_idx, item_idx, watch_ratio)`` loaded from the preprocessing outputs
  (``INTERACTIONS`` schema, ``docs/ARCHITECTURE.md``) or built from arrays in tests;
* :func:`seen_csr` / :meth:`Interactions.matrix` — the seen set as a CSR of unique ``(user, item)`` pairs with
  the items sorted within each user's row (one construction, two views: raw ``(indptr, items)`` arrays for the
  request path, a boolean ``scipy.sparse`` matrix for the batched paths);
* :func:`seen_from` — which rows count as seen, under the policy below;
* the removal step in its three shapes, all with the same meaning (a seen item can never be returned):
  :func:`exclude_seen` (``(B, I)`` scores of users, retrieval), :func:`mask_seen_` (a batch's score block and its
  aligned seen rows, evaluation), :func:`remove_seen` (one user's ranked list and sorted seen items, serving).

**Seen-item policy.** "Seen" is a set of splits and a row filter (:class:`SeenPolicy`):

=================  =================================  ============================================================
purpose            rows that count as seen            why
=================  =================================  ============================================================
evaluation         the *positives* (``watch_ratio >=  These are the edges the model was trained on: crediting a
                   positive_threshold``) of the       model for ranking them would measure memory, not
                   splits the model was fit on; when  generalisation (the standard offline protocol of LightGCN
                   scoring ``test`` also the          and implicit). Non-positive training rows stay rankable:
                   validation positives               the model was never told they are positives, and the
                   (:func:`evaluation_policy`)        reported figures keep their meaning across runs.
serving            every logged row of ``train``,     At request time the whole log is the past: a user should not
                   ``val`` and ``test``, any label    be shown again a video they have already been shown, liked
                   (:data:`SERVING`)                  or not.
=================  =================================  ============================================================

The two purposes differ on purpose (different questions: "how good is the model on what it has not learned
from" vs "what should the user be shown next"); both are stated here and built by the same :func:`seen_from`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pyarrow.parquet as pq
import scipy.sparse as sp

from graphrec_ray.errors import DataError

#: the splits of ``big_matrix``, in time order
LOG_SPLITS: tuple[str, ...] = ("train", "val", "test")


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

    def concat(self, other: "Interactions") -> "Interactions":
        """Rows of ``self`` then rows of ``other`` (same id spaces); watch ratios kept when both have them."""
        wr = (None if self.watch_ratio is None or other.watch_ratio is None
              else np.concatenate([self.watch_ratio, other.watch_ratio]))
        return Interactions(np.concatenate([self.user_idx, other.user_idx]),
                            np.concatenate([self.item_idx, other.item_idx]), self.n_users, self.n_items, wr)

    def matrix(self) -> sp.csr_matrix:
        """``(n_users, n_items)`` boolean CSR of the (deduplicated) pairs, sorted indices (:func:`seen_csr`)."""
        indptr, items = seen_csr(self.user_idx, self.item_idx, self.n_users)
        return sp.csr_matrix((np.ones(items.size, dtype=bool), items, indptr), shape=(self.n_users, self.n_items))

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


# ------------------------------------------------------------------------------------------- the seen set
def seen_csr(user_idx: np.ndarray, item_idx: np.ndarray, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR arrays of the unique ``(user, item)`` pairs, items sorted within each user's row.

    Args:
        user_idx: ``(N,)`` user indices in ``[0, n_users)``.
        item_idx: ``(N,)`` item indices (``< 2**31``); duplicates are merged.
        n_users: number of rows.

    Returns:
        ``(indptr (n_users + 1,) int64, items (nnz,) int32)``; user ``u``'s seen items are
        ``items[indptr[u]:indptr[u + 1]]``, sorted ascending (what :func:`remove_seen` needs).
    """
    pairs = np.unique(np.asarray(user_idx, np.int64) * (1 << 32) + np.asarray(item_idx, np.int64))
    users = pairs >> 32
    items = (pairs & 0xFFFFFFFF).astype(np.int32)
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.add.at(indptr, users + 1, 1)
    return np.cumsum(indptr), items


@dataclass(frozen=True)
class SeenPolicy:
    """Which logged rows count as "seen" (see the module docstring for the two purposes and why).

    Attributes:
        splits: names of the splits whose rows count.
        min_watch_ratio: only rows with ``watch_ratio >= min_watch_ratio`` count (positives); None: every row.
    """

    splits: tuple[str, ...]
    min_watch_ratio: float | None = None


#: serving: every row of every log split, whatever its label
SERVING = SeenPolicy(LOG_SPLITS, None)


def evaluation_policy(fit_splits: tuple[str, ...], positive_threshold: float, target: str = "test") -> SeenPolicy:
    """The evaluation policy: positives of the splits the model was fit on, plus ``val`` when scoring ``test``.

    Args:
        fit_splits: splits the model was trained on (``("train",)``, or ``("train", "val")`` for a refit).
        positive_threshold: a row is a positive when ``watch_ratio >= positive_threshold``.
        target: the split being scored (``"val"``, ``"test"``, or e.g. ``"eval_small"``: no extra split).
    """
    splits = tuple(fit_splits) + (("val",) if target == "test" and "val" not in fit_splits else ())
    return SeenPolicy(splits, positive_threshold)


def seen_from(rows: Mapping[str, Interactions], policy: SeenPolicy) -> sp.csr_matrix:
    """``(n_users, n_items)`` boolean CSR of the pairs that ``policy`` counts as seen among ``rows[split]``.

    Args:
        rows: split name -> its interactions (every split named by ``policy.splits`` must be present).
        policy: which splits and which rows (:data:`SERVING`, :func:`evaluation_policy`).
    """
    missing = [s for s in policy.splits if s not in rows]
    if missing:
        raise KeyError(f"seen policy needs splits {missing}, got {sorted(rows)}")
    parts = [rows[s] if policy.min_watch_ratio is None else rows[s].relevant(">=", policy.min_watch_ratio)
             for s in policy.splits]
    if not parts:
        raise ValueError("a seen policy needs at least one split")
    out = parts[0]
    for p in parts[1:]:
        out = out.concat(p)
    return out.matrix()


def load_seen(layout: Any, n_users: int, policy: SeenPolicy = SERVING) -> tuple[np.ndarray, np.ndarray]:
    """The seen set of a run directory as :func:`seen_csr` arrays, read from ``preprocess/<split>.parquet``.

    What serving needs (``policy`` defaults to :data:`SERVING`); reads only ``user_idx``/``item_idx`` (and
    ``watch_ratio`` when the policy filters on it).

    Args:
        layout: the run's :class:`graphrec_ray.layout.RunLayout`.
        n_users: rows of the CSR (the user id space, e.g. the user embedding table's length).
        policy: which splits and rows count.

    Returns:
        ``(indptr (n_users + 1,) int64, items (nnz,) int32)``.

    Raises:
        DataError: a split file is missing or holds a ``user_idx`` outside ``[0, n_users)``.
    """
    users, items = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for split in policy.splits:
        path = layout.split(split)
        if not path.is_file():
            raise DataError(f"missing {path} (run preprocess first)")
        cols = ["user_idx", "item_idx"] + (["watch_ratio"] if policy.min_watch_ratio is not None else [])
        t = pq.read_table(str(path), columns=cols)
        u, i = t.column("user_idx").to_numpy().astype(np.int64), t.column("item_idx").to_numpy().astype(np.int64)
        if policy.min_watch_ratio is not None:
            keep = t.column("watch_ratio").to_numpy() >= policy.min_watch_ratio
            u, i = u[keep], i[keep]
        users.append(u)
        items.append(i)
    u, i = np.concatenate(users), np.concatenate(items)
    if u.size and (u.min() < 0 or u.max() >= n_users):
        raise DataError(f"user_idx out of range [0, {n_users}) in {policy.splits}")
    return seen_csr(u, i, n_users)


# ------------------------------------------------------------------------------------- the removal step
def mask_seen_(scores: Any, seen_rows: sp.spmatrix) -> Any:
    """Set ``scores[b, j] = -inf`` wherever ``seen_rows[b, j]``; in place, returns ``scores``.

    Args:
        scores: ``(B, C)`` float numpy array or torch tensor.
        seen_rows: ``(B, C)`` sparse matrix aligned with ``scores`` (row ``b`` = the seen items of the user of
            ``scores[b]``, over the same ``C`` candidates).
    """
    coo = sp.coo_matrix(seen_rows)
    if coo.nnz:
        scores[coo.row.astype(np.int64), coo.col.astype(np.int64)] = -np.inf
    return scores


def exclude_seen(scores: np.ndarray, user_idx: np.ndarray, seen: sp.csr_matrix) -> np.ndarray:
    """Set ``scores[b, i] = -inf`` for every item ``i`` in ``seen[user_idx[b]]``; returns a new float32 array.

    Args:
        scores: ``(B, I)`` float scores.
        user_idx: ``(B,)`` user indices (rows of ``seen``).
        seen: ``(U, I)`` CSR of items already seen.
    """
    out = np.array(scores, dtype=np.float32, copy=True)
    return mask_seen_(out, seen[np.asarray(user_idx, dtype=np.int64)])


def remove_seen(item_idx: np.ndarray, seen_sorted: np.ndarray) -> np.ndarray:
    """Drop already-seen items (and FAISS's ``-1`` padding) from ranked ``item_idx`` ``(K,)``, keeping order.

    Args:
        item_idx: ``(K,)`` candidate item indices, best first.
        seen_sorted: ``(S,)`` sorted item indices the user has already seen (a row of :func:`seen_csr`).

    Returns:
        ``(K',)`` int64 unseen candidates in the original order.
    """
    ids = np.asarray(item_idx, dtype=np.int64)
    ids = ids[ids >= 0]
    if seen_sorted.size == 0 or ids.size == 0:
        return ids
    pos = np.minimum(np.searchsorted(seen_sorted, ids), seen_sorted.size - 1)
    return ids[seen_sorted[pos] != ids]

