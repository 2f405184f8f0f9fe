"""The shared recommender contract (planted communities) for every retrieval model."""

from __future__ import annotations

import numpy as np

from graphrec_ray.retrieval.build import build_recommender
from graphrec_ray.retrieval.config import RetrievalConfig
from graphrec_ray.retrieval.popularity import MostPopular
from tests.unit.retrieval.planted import planted_communities
from tests.unit.retrieval.recommender_contract import RecommenderContract

SMALL = RetrievalConfig(dim=16, batch_size=128, lr=0.02, reg=1e-4, epochs=25)


class TestLightGCN(RecommenderContract):
    def make(self):
        return build_recommender("lightgcn", SMALL)


class TestLightGCNIPS(RecommenderContract):
    def make(self):
        return build_recommender("lightgcn_ips", SMALL)


class TestLightGCNHardNegatives(RecommenderContract):
    def make(self):
        cfg = RetrievalConfig(dim=16, batch_size=128, lr=0.02, epochs=25, hard_ratio=0.5, hard_k=10,
                              hard_start_epoch=5)
        return build_recommender("lightgcn", cfg)


class TestMF(RecommenderContract):
    def make(self):
        return build_recommender("mf", SMALL)


class TestMostPopular(RecommenderContract):
    learns_communities = False

    def make(self):
        return MostPopular()

    def test_ranks_by_distinct_user_count(self) -> None:
        data = planted_communities()
        rec = MostPopular().fit(data.train)
        counts = np.asarray(data.train.matrix().sum(0)).ravel()
        top, _ = rec.recommend(np.array([0]), k=data.train.n_items)
        assert np.all(np.diff(counts[top[0]]) <= 0)
