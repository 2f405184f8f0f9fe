"""The request path on a planted run directory: known top items, seen removal, cold start, versions."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from graphrec_ray.errors import DataError, UserError
from graphrec_ray.interactions import remove_seen
from graphrec_ray.rerank.mmr import intra_list_diversity
from graphrec_ray.serving.cache import EmbeddingCache
from graphrec_ray.serving.config import ServeConfig
from graphrec_ray.serving.request_path import lookup_user, parse_k, parse_user_id, recommend, retrieve_batch
from graphrec_ray.serving.version_slots import PartCache, VersionSlot
from graphrec_ray.serving.versions import (
    ModelVersion, load_rerank_part, load_version, resolve_loader, version_id,
)
from tests.unit.serving.planted import ITEM_RAW, RANKER, USER_RAW, Planted, make_run_dir


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Planted:
    return make_run_dir(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="module")
def version(planted: Planted) -> ModelVersion:
    return load_version(planted.run_dir, RANKER)


def _item_idx(body: dict) -> np.ndarray:
    return (np.array([it["item_id"] for it in body["items"]]) - 50000) // 3


def test_remove_seen_is_its_own_step_and_keeps_order() -> None:
    out = remove_seen(np.array([9, 4, -1, 7, 2, 4]), np.array([2, 4]))
    np.testing.assert_array_equal(out, [9, 7])
    np.testing.assert_array_equal(remove_seen(np.array([3, 1]), np.zeros(0, np.int32)), [3, 1])


def test_top_k_equals_exact_unseen_top_with_lambda_one(planted: Planted, version: ModelVersion) -> None:
    # the ranker is monotone in the inner product, so with lambda=1 the served list is the exact unseen top-k
    cfg = ServeConfig(lambda_diversity=1.0)
    cache = EmbeddingCache(None)
    for u in range(0, 30, 3):
        body = recommend(version, int(USER_RAW(u)), 10, cfg, cache)
        got = _item_idx(body)
        np.testing.assert_array_equal(got, planted.exact_unseen_top(u, 10))
        assert not set(got.tolist()) & planted.seen[u]
        assert body["cold_start"] is False and body["cache_hit"] is False
        finals = [it["final_score"] for it in body["items"]]
        assert finals == sorted(finals, reverse=True)
        for it in body["items"]:
            assert 0.0 <= it["p_click"] <= 1.0
            assert it["final_score"] == pytest.approx(it["p_click"] + it["e_value"] / cfg.value_scale, rel=1e-5)


def test_seen_items_from_every_split_are_removed(planted: Planted, version: ModelVersion) -> None:
    cands = retrieve_batch(version.retrieval, version.version, list(range(30)), EmbeddingCache(None), 50)
    for u, c in enumerate(cands):
        assert c.user_idx == u and not set(c.item_idx.tolist()) & planted.seen[u]
        assert c.item_idx.size == 50  # over-fetch keeps k_candidates after removal
        assert c.item_idx.min() >= 0 and c.item_idx.max() < 120


def test_lower_lambda_diversifies_served_list(planted: Planted, version: ModelVersion) -> None:
    cache = EmbeddingCache(None)
    raw = int(USER_RAW(5))
    lists = {lam: _item_idx(recommend(version, raw, 10, ServeConfig(lambda_diversity=lam), cache))
             for lam in (1.0, 0.3)}
    ild = {lam: intra_list_diversity(version.rerank.item_unit[ids]) for lam, ids in lists.items()}
    assert ild[0.3] > ild[1.0]
    assert len(set(planted.cluster[lists[1.0]].tolist())) == 1  # relevance only: the user's cluster
    assert len(set(planted.cluster[lists[0.3]].tolist())) > 1


def test_unknown_user_gets_diverse_popular_cold_start(planted: Planted) -> None:
    cfg = ServeConfig(cold_start_pool=20, lambda_diversity=0.5)
    version = load_version(planted.run_dir, RANKER, cold_start_pool=20)
    body = recommend(version, 999_999, 10, cfg, EmbeddingCache(None))
    assert body["cold_start"] is True and body["cache_hit"] is False and len(body["items"]) == 10
    got = _item_idx(body)
    order = np.lexsort((np.arange(120), -planted.train_count))
    pool = set(order[:20].tolist())
    assert set(got.tolist()) <= pool
    assert len(set(planted.cluster[got].tolist())) >= 3
    np.testing.assert_allclose([it["p_click"] for it in body["items"]], version.ranking.prior_click[got])


def test_cold_start_pool_is_the_most_exposed_items(planted: Planted, tmp_path: Path) -> None:
    from graphrec_ray.serving.versions import load_retrieval_part

    part = load_retrieval_part(planted.run_dir, cold_start_pool=10)
    expected = np.lexsort((np.arange(120), -planted.train_count))[:10]
    np.testing.assert_array_equal(part.popular, expected)


def test_parse_and_lookup_edges(version: ModelVersion) -> None:
    assert parse_user_id(" 1007 ") == 1007 and parse_user_id("-3") == -3
    for bad in ("abc", "1.5", "", "1e3", "9" * 30):
        with pytest.raises(ValueError):
            parse_user_id(bad)
    assert parse_k(None, 10, 100) == 10 and parse_k("100", 10, 100) == 100
    for bad in ("0", "101", "-1", "x", "2.0"):
        with pytest.raises(ValueError, match="k must"):
            parse_k(bad, 10, 100)
    assert lookup_user(version.ids, int(USER_RAW(4))) == 4
    assert lookup_user(version.ids, 1001) == -1  # between two known sparse ids
    assert int(ITEM_RAW(2)) == 50006


def test_version_id_tracks_artifacts(planted: Planted, tmp_path: Path) -> None:
    other = make_run_dir(tmp_path / "v2", seed=1, embedding_version="emb-v2")
    assert version_id(planted.run_dir) != version_id(other.run_dir)
    copy = tmp_path / "copy"
    shutil.copytree(planted.run_dir, copy)
    assert version_id(copy) == version_id(planted.run_dir)
    with pytest.raises(DataError):
        version_id(tmp_path / "nothing")


def test_version_slot_request_keeps_captured_version_during_swap(planted: Planted, tmp_path: Path) -> None:
    v1 = load_version(planted.run_dir, RANKER)
    v2 = load_version(make_run_dir(tmp_path / "v2", seed=3, embedding_version="emb-v2").run_dir, RANKER)
    slot: VersionSlot[ModelVersion] = VersionSlot(v1)
    cfg, cache = ServeConfig(), EmbeddingCache(None)
    errors: list[str] = []

    def client() -> None:
        for _ in range(30):
            v = slot.get()
            body = recommend(v, int(USER_RAW(2)), 5, cfg, cache)
            expected = recommend(v, int(USER_RAW(2)), 5, cfg, cache)
            if body["model_version"] != v.version or body["items"] != expected["items"]:
                errors.append("mixed")

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    for _ in range(10):
        slot.swap(v2)
        slot.swap(v1)
    for t in threads:
        t.join()
    assert not errors
    assert slot.swap(v2) is v1 and slot.get() is v2


def test_part_cache_loads_once_bounds_memory_and_detects_replaced_dir(planted: Planted, tmp_path: Path) -> None:
    calls: list[Path] = []

    def loader(run_dir: Path) -> object:
        calls.append(run_dir)
        return load_rerank_part(run_dir)

    cache: PartCache[object] = PartCache(loader, max_loaded=2)
    dirs = [planted.run_dir] + [make_run_dir(tmp_path / f"v{i}", seed=10 + i,
                                             embedding_version=f"e{i}").run_dir for i in (2, 3)]
    ids = [version_id(d) for d in dirs]
    a = cache.get(ids[0], dirs[0])
    assert cache.get(ids[0], dirs[0]) is a and len(calls) == 1
    cache.get(ids[1], dirs[1])
    cache.get(ids[2], dirs[2])
    assert cache.loaded() == ids[1:]
    with pytest.raises(DataError, match="now holds"):
        cache.get("0123456789ab", dirs[0])


def test_resolve_loader_errors() -> None:
    assert callable(resolve_loader(RANKER))
    for bad in ("nocolon", "no_such_module_xyz:f", "graphrec_ray.ranking.embedding_ranker:Missing"):
        with pytest.raises(UserError):
            resolve_loader(bad)
