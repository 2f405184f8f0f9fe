"""The one contract every retrieval model follows: ``fit``, ``score``, ``recommend``.

Modelled on benfred/implicit's ``RecommenderBase``: a model learns from training interactions (:meth:`fit`),
scores the whole catalogue for a batch of users (:meth:`score`), and :meth:`recommend` turns scores into a top-K
list. Removing already-seen items is its own visible step (:func:`graphrec_ray.interactions.exclude_seen`), not
hidden inside a model; :mod:`graphrec_ray.interactions` holds it with the seen-item policy that evaluation and serving
share. One shared test mixin
(``tests/unit/retrieval/recommender_contract.py``) runs the same behavioural tests against every model.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import scipy.sparse as sp

from graphrec_ray.interactions import Interactions, exclude_seen


class Recommender(ABC):
    """A trained retrieval model over ``n_items`` items (contiguous ``item_idx``)."""

    n_users: int = 0
    n_items: int = 0

    @abstractmethod
    def fit(self, train: Interactions) -> "Recommender":
        """Learn from training positives (rows of ``train``); returns ``self``."""

    @abstractmethod
    def score(self, user_idx: np.ndarray) -> np.ndarray:
        """``(B,) -> (B, n_items)`` float32 scores; higher is better. Seen items are NOT removed here."""

    def recommend(self, user_idx: np.ndarray, k: int = 10, seen: sp.csr_matrix | None = None,
                  items: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items per user.

        Args:
            user_idx: ``(B,)`` users.
            k: list length (default 10; clamped to the number of candidates).
            seen: optional ``(U, I)`` CSR; these items are removed first (:func:`exclude_seen`).
            items: optional ``(C,)`` candidate item indices (default: all items).

        Returns:
            ``(B, k)`` int64 item indices (best first) and ``(B, k)`` float32 scores; ``-inf`` scores mark
            slots that had no eligible item left.
        """
        user_idx = np.asarray(user_idx, dtype=np.int64)
        scores = self.score(user_idx)
        if seen is not None:
            scores = exclude_seen(scores, user_idx, seen)
        if items is not None:
            items = np.asarray(items, dtype=np.int64)
            scores = scores[:, items]
        k = min(k, scores.shape[1])
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        part_scores = np.take_along_axis(scores, part, axis=1)
        order = np.argsort(-part_scores, axis=1, kind="stable")
        top = np.take_along_axis(part, order, axis=1)
        top_scores = np.take_along_axis(part_scores, order, axis=1)
        if items is not None:
            top = items[top]
        return top.astype(np.int64), top_scores.astype(np.float32)


class EmbeddingRecommender(Recommender):
    """Scores are inner products of user and item embeddings (MF, LightGCN once trained).

    Args:
        user_embeddings: ``(U, d)`` float32; item_embeddings: ``(I, d)`` float32.
    """

    def __init__(self, user_embeddings: np.ndarray, item_embeddings: np.ndarray) -> None:
        self.set_embeddings(user_embeddings, item_embeddings)

    def set_embeddings(self, user_embeddings: np.ndarray, item_embeddings: np.ndarray) -> None:
        """Replace the embedding tables."""
        self.user_embeddings = np.ascontiguousarray(user_embeddings, dtype=np.float32)
        self.item_embeddings = np.ascontiguousarray(item_embeddings, dtype=np.float32)
        self.n_users, self.n_items = self.user_embeddings.shape[0], self.item_embeddings.shape[0]

    def fit(self, train: Interactions) -> "EmbeddingRecommender":
        """Fixed embeddings: nothing to learn."""
        return self

    def score(self, user_idx: np.ndarray) -> np.ndarray:
        """``(B, I)`` inner products."""
        return self.user_embeddings[np.asarray(user_idx, dtype=np.int64)] @ self.item_embeddings.T
