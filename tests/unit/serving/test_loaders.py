"""Deployments get their loaders and cache from the builder (issue 9 item 5): they never build them from the
whole ServeConfig themselves.

Regression: every stage constructed `load_*_part(d, cfg.…)` lambdas and `EmbeddingCache.from_config(cfg.cache)` in
its own constructor, so a test or another builder could not hand in a fake, and the loading rules lived in four
places."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graphrec_ray.serving.cache import EmbeddingCache
from graphrec_ray.serving.config import CacheConfig, ServeConfig
from serve_app.collocated import Recommender
from serve_app.deployments import RankingStage, RerankingStage, RetrievalStage
from serve_app.loaders import Loaders, loaders_from
from tests.unit.serving.planted import RANKER, Planted, make_run_dir


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Planted:
    return make_run_dir(tmp_path_factory.mktemp("run") / "v1", seed=0)


def _recording(base: Loaders) -> tuple[Loaders, dict[str, list[Any]]]:
    calls: dict[str, list[Any]] = {"retrieval": [], "ranking": [], "rerank": [], "version": [], "cache": []}
    cache = EmbeddingCache.from_config(CacheConfig(url=""))

    def wrap(name: str, fn: Any) -> Any:
        def call(*args: Any) -> Any:
            calls[name].append(args)
            return fn(*args)
        return call

    def make_cache() -> EmbeddingCache:
        calls["cache"].append(cache)
        return cache

    return dataclasses.replace(base, retrieval=wrap("retrieval", base.retrieval), ranking=wrap("ranking", base.ranking),
                               rerank=wrap("rerank", base.rerank), version=wrap("version", base.version),
                               cache=make_cache), calls


def test_graph_stages_load_through_the_injected_loaders(run: Planted) -> None:
    cfg = ServeConfig(ranker_loader="no_such_module:never_used", cache=CacheConfig(url="redis://10.255.255.1:1"))
    loaders, calls = _recording(loaders_from(ServeConfig(ranker_loader=RANKER, cache=CacheConfig(url=""))))
    rd = str(run.run_dir)
    retrieval = RetrievalStage(cfg, rd, loaders)
    RankingStage(cfg, rd, loaders)
    RerankingStage(cfg, rd, loaders)
    # cfg's own ranker_loader and Redis URL would fail: only the injected loaders and cache were used
    assert [Path(a[0]) for a in calls["retrieval"]] == [run.run_dir]
    assert [Path(a[0]) for a in calls["ranking"]] == [run.run_dir]
    assert [Path(a[0]) for a in calls["rerank"]] == [run.run_dir]
    assert retrieval.cache is calls["cache"][0]


def test_collocated_loads_whole_versions_through_the_injected_loader(run: Planted) -> None:
    cfg = ServeConfig(ranker_loader="no_such_module:never_used")
    loaders, calls = _recording(loaders_from(ServeConfig(ranker_loader=RANKER, cache=CacheConfig(url=""))))
    rec = Recommender(cfg, str(run.run_dir), loaders)
    assert [Path(a[0]) for a in calls["version"]] == [run.run_dir] and calls["retrieval"] == []
    assert rec.cache is calls["cache"][0]


def test_loaders_from_config_travel_to_replicas_and_match_direct_loading(run: Planted) -> None:
    cfg = ServeConfig(ranker_loader=RANKER, cache=CacheConfig(url=""))
    loaders = pickle.loads(pickle.dumps(loaders_from(cfg)))  # Serve pickles deployment arguments
    part = loaders.retrieval(run.run_dir)
    from graphrec_ray.serving.versions import load_retrieval_part

    direct = load_retrieval_part(run.run_dir, cfg.seen_splits, cfg.cold_start_pool)
    np.testing.assert_array_equal(part.seen_items, direct.seen_items)
    np.testing.assert_array_equal(part.popular, direct.popular)
