"""The index stage: retrieval item embeddings -> FAISS index (``run_dir/index/items.faiss`` + manifest).

Reads ``retrieval/item_embeddings.npy`` and the retrieval manifest's ``embedding_version``, builds the index
from ``IndexConfig.factory`` (inner product), checks recall@k against exact search on a seeded sample of user
embeddings, and writes the index with a manifest (factory, nprobe, embedding_version, checksum, recall). One
entry, :func:`run`; ``jobs/build_index.py`` adds argument parsing and MLflow.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from tqdm import tqdm

from graphrec_ray.config import config_hash
from graphrec_ray.errors import DataError
from graphrec_ray.index.config import IndexConfig
from graphrec_ray.index.faiss_index import ItemIndex, exact_topk, recall_at_k
from graphrec_ray.layout import RunLayout
from graphrec_ray.manifest import read_manifest


def load_embeddings(layout: RunLayout) -> tuple[np.ndarray, np.ndarray | None, str]:
    """``(items (I, d) float32, users (U, d) float32 or None, embedding_version)`` from ``layout.retrieval``."""
    if not layout.manifest(layout.retrieval).is_file() or not layout.item_embeddings.is_file():
        raise DataError(f"no retrieval embeddings in {layout.retrieval} (run train-retrieval first)")
    version = str(read_manifest(layout.retrieval).get("embedding_version", "unknown"))
    items = np.load(layout.item_embeddings)
    users = np.load(layout.user_embeddings) if layout.user_embeddings.is_file() else None
    if items.ndim != 2 or items.shape[0] == 0:
        raise DataError(f"{layout.item_embeddings} must be a non-empty (n_items, d) array, got {items.shape}")
    return items.astype(np.float32), None if users is None else users.astype(np.float32), version


def run(cfg: IndexConfig, layout: RunLayout, progress: bool = False) -> dict[str, Any]:
    """Build, check and save the index of ``layout``; returns a summary (factory, sizes, recall, seconds)."""
    steps = tqdm(total=3, desc="build-index", disable=not progress)
    items, users, version = load_embeddings(layout)
    steps.update(1)
    t0 = time.perf_counter()
    index = ItemIndex.build(items, cfg.factory, version, cfg.nprobe, cfg.ef_search, cfg.refine_k_factor,
                            cfg.train_sample, cfg.seed)
    build_s = time.perf_counter() - t0
    steps.update(1)
    recall = None
    if users is not None and cfg.verify_queries > 0:
        rows = np.random.default_rng(cfg.seed).choice(users.shape[0], min(cfg.verify_queries, users.shape[0]),
                                                      replace=False)
        k = min(cfg.verify_recall_k, items.shape[0])
        recall = recall_at_k(index.search(users[rows], k)[1], exact_topk(items, users[rows], k))
    summary = {"factory": cfg.factory, "nprobe": cfg.nprobe, "embedding_version": version,
               "n_items": int(items.shape[0]), "dim": int(items.shape[1]), "build_seconds": round(build_s, 3),
               f"recall_at_{cfg.verify_recall_k}": recall, "index_dir": str(layout.index)}
    index.save(layout.index, config_hash(cfg), {"recall_check": {"k": cfg.verify_recall_k, "recall": recall}})
    steps.update(1)
    steps.close()
    return summary
