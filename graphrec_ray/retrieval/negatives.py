"""Negative samplers for BPR: uniform (excluding positives), hard (mined from the model's top-K), mixed.

No sampler ever returns one of the user's training positives: uniform draws are rejected and redrawn, hard
candidates are mined with positives masked out, and :class:`MixedNegatives` only combines the two.

Example::

    >>> pos = sp.csr_matrix(np.array([[True, True, False]]))
    >>> UniformNegatives(pos).sample(np.array([0, 0, 0]), np.random.default_rng(0)).tolist()
    [2, 2, 2]
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch


class PositiveSet:
    """Fast membership test for ``(user, item)`` training positives.

    Args:
        positives: ``(U, I)`` CSR of training positives.
    """

    def __init__(self, positives: sp.csr_matrix) -> None:
        m = sp.csr_matrix(positives, dtype=bool)
        m.sort_indices()
        self.n_users, self.n_items = m.shape
        rows = np.repeat(np.arange(self.n_users, dtype=np.int64), np.diff(m.indptr))
        self.keys = np.unique(rows * self.n_items + m.indices.astype(np.int64))
        self.degree = np.diff(m.indptr).astype(np.int64)
        self.matrix = m

    def contains(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """``(B,)`` bool: is ``(users[b], items[b])`` a positive."""
        if self.keys.size == 0:
            return np.zeros(np.shape(users), dtype=bool)
        k = np.asarray(users, dtype=np.int64) * self.n_items + np.asarray(items, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.keys, k), self.keys.size - 1)
        return self.keys[pos] == k


class UniformNegatives:
    """Items drawn uniformly from those the user has not interacted with.

    Args:
        positives: ``(U, I)`` CSR of training positives. Users who interacted with every item cannot get a
            negative: sampling for them raises ``ValueError``.
    """

    def __init__(self, positives: sp.csr_matrix) -> None:
        self.positives = PositiveSet(positives)

    def sample(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``(B,)`` int64 negatives for ``(B,)`` users (rejection sampling, then an exact fallback)."""
        users = np.asarray(users, dtype=np.int64)
        n_items = self.positives.n_items
        if np.any(self.positives.degree[users] >= n_items):
            raise ValueError("a user has interacted with every item; no negative exists")
        items = rng.integers(0, n_items, size=users.size)
        bad = np.flatnonzero(self.positives.contains(users, items))
        for _ in range(50):
            if bad.size == 0:
                return items
            items[bad] = rng.integers(0, n_items, size=bad.size)
            bad = bad[self.positives.contains(users[bad], items[bad])]
        for b in bad:  # users with almost every item seen: draw from the complement exactly
            seen = self.positives.matrix.indices[self.positives.matrix.indptr[users[b]]:
                                                 self.positives.matrix.indptr[users[b] + 1]]
            items[b] = rng.choice(np.setdiff1d(np.arange(n_items), seen))
        return items


def mine_hard_candidates(user_emb: torch.Tensor, item_emb: torch.Tensor, positives: sp.csr_matrix, k: int,
                         batch_size: int = 1024) -> np.ndarray:
    """Each user's top-``k`` items by inner product, training positives excluded (exact search).

    Args:
        user_emb: ``(U, d)``; item_emb: ``(I, d)`` current final embeddings.
        positives: ``(U, I)`` CSR of training positives.
        k: candidates per user.
        batch_size: users scored per matmul (default 1024).

    Returns:
        ``(U, k)`` int64 item indices, best first; ``-1`` pads users with fewer than ``k`` non-positive items.
    """
    U, I = user_emb.shape[0], item_emb.shape[0]
    k = min(k, I)
    out = np.full((U, k), -1, dtype=np.int64)
    m = sp.csr_matrix(positives, dtype=bool)
    with torch.no_grad():
        for start in range(0, U, batch_size):
            stop = min(U, start + batch_size)
            scores = user_emb[start:stop] @ item_emb.T
            sub = m[start:stop].tocoo()
            rows = torch.from_numpy(sub.row.astype(np.int64)).to(scores.device)
            cols = torch.from_numpy(sub.col.astype(np.int64)).to(scores.device)
            scores[rows, cols] = -torch.inf
            vals, idx = torch.topk(scores, k, dim=1)
            idx = idx.cpu().numpy()
            idx[torch.isinf(vals).cpu().numpy()] = -1
            out[start:stop] = idx
    return out


class HardNegatives:
    """Uniform draws from each user's mined top-K non-positive items (see :func:`mine_hard_candidates`).

    Args:
        candidates: ``(U, K)`` int64 from :func:`mine_hard_candidates` (``-1`` = padding).
        fallback: sampler used for users without any candidate.
    """

    def __init__(self, candidates: np.ndarray, fallback: UniformNegatives) -> None:
        self.candidates = np.asarray(candidates, dtype=np.int64)
        self.count = (self.candidates >= 0).sum(axis=1)
        self.fallback = fallback

    def sample(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``(B,)`` int64 negatives for ``(B,)`` users."""
        users = np.asarray(users, dtype=np.int64)
        cnt = self.count[users]
        # candidates are left-packed (topk order), so a uniform column below the count is a valid candidate
        col = np.floor(rng.random(users.size) * np.maximum(cnt, 1)).astype(np.int64)
        items = self.candidates[users, col]
        empty = cnt == 0
        if empty.any():
            items[empty] = self.fallback.sample(users[empty], rng)
        return items


class MixedNegatives:
    """Each negative is hard with probability ``hard_ratio``, else uniform.

    Args:
        uniform: the uniform sampler.
        hard: the hard sampler, or None until the first mining (then all draws are uniform).
        hard_ratio: share of hard negatives in ``[0, 1]`` (default 0.5).
    """

    def __init__(self, uniform: UniformNegatives, hard: HardNegatives | None = None, hard_ratio: float = 0.5) -> None:
        if not 0.0 <= hard_ratio <= 1.0:
            raise ValueError("hard_ratio must be in [0, 1]")
        self.uniform, self.hard, self.hard_ratio = uniform, hard, hard_ratio

    def sample(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``(B,)`` int64 negatives for ``(B,)`` users."""
        users = np.asarray(users, dtype=np.int64)
        items = self.uniform.sample(users, rng)
        if self.hard is not None and self.hard_ratio > 0:
            use_hard = rng.random(users.size) < self.hard_ratio
            if use_hard.any():
                items[use_hard] = self.hard.sample(users[use_hard], rng)
        return items
