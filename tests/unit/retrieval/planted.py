"""Planted-community interaction data with a known answer, shared by the retrieval tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from graphrec_ray.interactions import Interactions


@dataclass(frozen=True)
class Planted:
    train: Interactions  # training positives
    heldout: np.ndarray  # (U,) one held-out in-community item per user
    user_comm: np.ndarray  # (U,) community of each user
    item_comm: np.ndarray  # (I,) community of each item


def planted_communities(n_comm: int = 4, users_per: int = 30, items_per: int = 12, train_per: int = 8,
                        seed: int = 0) -> Planted:
    """Users of community c interact only with items of community c.

    Each user gets ``train_per`` of its community's ``items_per`` items for training and one more held out; so at
    most ``items_per - train_per`` unseen in-community items compete with the held-out one (fewer than 10 by
    default), and any model that ranks own-community items first puts the held-out item in its top 10.
    """
    rng = np.random.default_rng(seed)
    U, I = n_comm * users_per, n_comm * items_per
    user_comm = np.repeat(np.arange(n_comm), users_per)
    item_comm = np.repeat(np.arange(n_comm), items_per)
    us, its, held = [], [], np.empty(U, dtype=np.int64)
    for u in range(U):
        items = user_comm[u] * items_per + rng.permutation(items_per)[: train_per + 1]
        us.append(np.full(train_per, u))
        its.append(items[:train_per])
        held[u] = items[train_per]
    train = Interactions(np.concatenate(us), np.concatenate(its), U, I)
    return Planted(train, held, user_comm, item_comm)
