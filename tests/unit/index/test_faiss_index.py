"""FAISS item index: exact search finds planted neighbours, approximate ones keep recall, manifest round-trip."""

from __future__ import annotations

import json
from pathlib import Path

from typing import Iterator

import faiss
import numpy as np
import pytest

from graphrec_ray.errors import DataError, UserError
from graphrec_ray.index.faiss_index import ItemIndex, exact_topk, recall_at_k


@pytest.fixture(autouse=True)
def _one_faiss_thread() -> Iterator[None]:
    """One OpenMP thread: FAISS's spinning worker threads are slow on a shared 2-core machine."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


def _clustered(n: int = 4000, d: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((32, d)).astype(np.float32)
    items = (centres[rng.integers(0, 32, n)] + 0.3 * rng.standard_normal((n, d))).astype(np.float32)
    queries = (centres[rng.integers(0, 32, 50)] + 0.3 * rng.standard_normal((50, d))).astype(np.float32)
    return items, queries


def test_flat_returns_the_planted_best_item_by_inner_product() -> None:
    rng = np.random.default_rng(1)
    items = rng.standard_normal((500, 8)).astype(np.float32)
    items[123] = 10.0 * np.ones(8, dtype=np.float32)  # planted: largest inner product with the all-ones query
    index = ItemIndex.build(items, "Flat", "v1")
    scores, ids = index.search(np.ones((1, 8), np.float32), k=5)
    assert ids[0, 0] == 123
    assert scores[0, 0] == pytest.approx(80.0)
    np.testing.assert_array_equal(ids, exact_topk(items, np.ones((1, 8), np.float32), 5))
    assert np.all(np.diff(scores[0]) <= 0)


def test_inner_product_not_l2_metric() -> None:
    # a long vector far away in L2 but with the largest inner product must win
    items = np.array([[1.0, 0.0], [0.9, 0.1], [5.0, 5.0]], dtype=np.float32)
    _, ids = ItemIndex.build(items, "HNSW8", "v").search(np.array([[1.0, 0.0]], np.float32), 1)
    assert ids[0, 0] == 2


@pytest.mark.parametrize("factory,nprobe,min_recall", [
    ("IVF32,Flat", 32, 0.999),           # all lists probed: exact
    ("IVF32,PQ8x4,RFlat", 32, 0.95),      # compressed (4-bit PQ trains fast), re-scored exactly
    ("HNSW16", 0, 0.95),
])
def test_approximate_indexes_reach_recall(factory: str, nprobe: int, min_recall: float) -> None:
    items, queries = _clustered()
    index = ItemIndex.build(items, factory, "v1", nprobe=nprobe, ef_search=128, refine_k_factor=8.0)
    _, ids = index.search(queries, 20)
    assert recall_at_k(ids, exact_topk(items, queries, 20)) >= min_recall


def test_nprobe_controls_recall_of_ivf() -> None:
    items, queries = _clustered()
    exact = exact_topk(items, queries, 20)
    index = ItemIndex.build(items, "IVF64,Flat", "v1", nprobe=1)
    r1 = recall_at_k(index.search(queries, 20)[1], exact)
    index.nprobe = 64
    index.apply_params()
    r64 = recall_at_k(index.search(queries, 20)[1], exact)
    assert r1 < 0.95 and r64 > 0.999


def test_save_load_roundtrip_with_manifest(tmp_path: Path) -> None:
    items, queries = _clustered(n=2000)
    built = ItemIndex.build(items, "IVF16,Flat", "emb-7", nprobe=3)
    built.save(tmp_path)
    doc = json.loads((tmp_path / "manifest.json").read_text())
    assert doc["factory"] == "IVF16,Flat" and doc["nprobe"] == 3 and doc["embedding_version"] == "emb-7"
    assert len(doc["checksum"]) == 64 and doc["files"]["items.faiss"]["sha256"] == doc["checksum"]
    loaded = ItemIndex.load(tmp_path, expect_embedding_version="emb-7")
    assert loaded.nprobe == 3 and loaded.ntotal == 2000
    np.testing.assert_array_equal(loaded.search(queries, 10)[1], built.search(queries, 10)[1])


def test_load_rejects_corrupt_file_and_wrong_embedding_version(tmp_path: Path) -> None:
    items, _ = _clustered(n=300)
    ItemIndex.build(items, "Flat", "emb-1").save(tmp_path)
    with pytest.raises(DataError, match="embedding_version"):
        ItemIndex.load(tmp_path, expect_embedding_version="emb-2")
    with open(tmp_path / "items.faiss", "ab") as f:
        f.write(b"x")
    with pytest.raises(DataError, match="checksum"):
        ItemIndex.load(tmp_path)
    with pytest.raises(DataError, match="manifest"):
        ItemIndex.load(tmp_path / "missing")


def test_bad_factory_string_is_a_user_error() -> None:
    with pytest.raises(UserError, match="factory"):
        ItemIndex.build(np.zeros((10, 4), np.float32), "NoSuchIndex", "v")


def test_k_larger_than_catalogue_is_capped() -> None:
    items = np.eye(3, dtype=np.float32)
    scores, ids = ItemIndex.build(items, "Flat", "v").search(items, k=50)
    assert ids.shape == (3, 3)
    assert sorted(ids[0].tolist()) == [0, 1, 2]
