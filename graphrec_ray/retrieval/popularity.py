"""Most-popular baseline: every user gets the items with the most training positives."""

from __future__ import annotations

import numpy as np

from graphrec_ray.interactions import Interactions
from graphrec_ray.retrieval.base import Recommender


class MostPopular(Recommender):
    """Score of item ``i`` = number of distinct training users with a positive on ``i`` (same for all users)."""

    def __init__(self) -> None:
        self.popularity = np.zeros(0, dtype=np.float32)

    def fit(self, train: Interactions) -> "MostPopular":
        """Count distinct positive users per item."""
        m = train.matrix()
        self.n_users, self.n_items = m.shape
        self.popularity = np.asarray(m.sum(axis=0), dtype=np.float32).ravel()
        return self

    def score(self, user_idx: np.ndarray) -> np.ndarray:
        """``(B, I)``: the popularity row repeated."""
        return np.broadcast_to(self.popularity, (np.asarray(user_idx).size, self.n_items)).copy()

    def embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        """``(U, 1)`` ones and ``(I, 1)`` popularity: the same scores as inner products (for a FAISS index)."""
        return np.ones((self.n_users, 1), np.float32), self.popularity[:, None].astype(np.float32)
