"""One behavioural test mixin run against every :class:`~graphrec_ray.retrieval.base.Recommender`."""

from __future__ import annotations

import numpy as np

from graphrec_ray.retrieval.base import Recommender
from tests.unit.retrieval.planted import planted_communities


class RecommenderContract:
    """Subclass with ``make() -> Recommender``; set ``learns_communities = False`` for non-personalised models."""

    learns_communities = True

    def make(self) -> Recommender:  # pragma: no cover - overridden
        raise NotImplementedError

    def _fitted(self):
        # one fit per test class (the tests only read the fitted model)
        cache = type(self).__dict__.get("_cache")
        if cache is None:
            data = planted_communities()
            cache = (data, self.make().fit(data.train))
            type(self)._cache = cache
        return cache

    def test_score_shape_and_finite(self) -> None:
        data, rec = self._fitted()
        s = rec.score(np.arange(5))
        assert s.shape == (5, data.train.n_items)
        assert np.isfinite(s).all()

    def test_recommend_never_returns_seen_items(self) -> None:
        data, rec = self._fitted()
        seen = data.train.matrix()
        users = np.arange(data.train.n_users)
        top, scores = rec.recommend(users, k=20, seen=seen)
        assert top.shape == (users.size, 20)
        assert not seen[users[:, None], top].toarray().any()
        assert np.all(np.diff(scores, axis=1) <= 0)  # best first

    def test_recommend_respects_candidate_items(self) -> None:
        data, rec = self._fitted()
        cand = np.arange(0, data.train.n_items, 3)
        top, _ = rec.recommend(np.arange(4), k=5, items=cand)
        assert np.isin(top, cand).all()

    def test_heldout_item_in_own_community_ranks_top10(self) -> None:
        data, rec = self._fitted()
        users = np.arange(data.train.n_users)
        top, _ = rec.recommend(users, k=10, seen=data.train.matrix())
        hit = (top == data.heldout[:, None]).any(axis=1)
        if self.learns_communities:
            assert hit.all(), f"held-out item missed for {int((~hit).sum())} users"
        else:  # a non-personalised model cannot know the communities: far from all users are hits
            assert hit.mean() < 0.9
