"""A small run directory with planted structure, for serving tests (unit and integration).

* ``n_items`` items in ``n_clusters`` planted clusters: item embedding = cluster direction * strength + noise;
  every user points at one cluster, so a user's best items are that cluster's strongest items.
* Each user has seen some of its top items (in train, val and test), so "top-k excludes seen" is checkable.
* Raw ids are sparse (users ``1000 + 7 * idx``, items ``50000 + 3 * idx``) to catch id-space mix-ups.
* ``item_propensity.parquet`` plants a known popularity order; the ranker is the dependency-free
  ``EmbeddingRanker`` (scores known exactly).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from graphrec_ray.ids import IdMap
from graphrec_ray.index.faiss_index import ItemIndex
from graphrec_ray.layout import RunLayout
from graphrec_ray.manifest import write_manifest
from graphrec_ray.schema import INTERACTIONS, ITEM_PROPENSITY

RANKER = "graphrec_ray.ranking.embedding_ranker:EmbeddingRanker.load"
USER_RAW = lambda idx: 1000 + 7 * np.asarray(idx, dtype=np.int64)  # noqa: E731
ITEM_RAW = lambda idx: 50000 + 3 * np.asarray(idx, dtype=np.int64)  # noqa: E731


@dataclass
class Planted:
    run_dir: Path
    user_emb: np.ndarray  # (n_users, d)
    item_emb: np.ndarray  # (n_items, d)
    cluster: np.ndarray  # (n_items,) planted cluster of each item
    user_cluster: np.ndarray  # (n_users,)
    seen: list[set[int]]  # per user_idx: seen item_idx (train + val + test)
    train_count: np.ndarray  # (n_items,)

    def exact_unseen_top(self, user_idx: int, k: int) -> np.ndarray:
        """Ground truth: the k unseen items with the largest inner product (ties by item_idx)."""
        s = self.item_emb @ self.user_emb[user_idx]
        order = np.lexsort((np.arange(s.size), -s))
        return np.array([i for i in order if i not in self.seen[user_idx]][:k])


def make_run_dir(root: Path, seed: int = 0, n_users: int = 30, n_items: int = 120, n_clusters: int = 6,
                 dim: int = 8, n_seen: int = 6, embedding_version: str = "emb-v1") -> Planted:
    """Write preprocess/, retrieval/, index/ and ranking/ manifests of a planted run under ``root``."""
    rng = np.random.default_rng(seed)
    layout = RunLayout(Path(root))
    for d in (layout.preprocess, layout.retrieval, layout.ranking):
        d.mkdir(parents=True, exist_ok=True)
    directions = np.linalg.qr(rng.standard_normal((dim, dim)))[0][:n_clusters].astype(np.float32)
    cluster = np.arange(n_items) % n_clusters
    strength = rng.uniform(0.5, 2.0, n_items).astype(np.float32)
    item_emb = (directions[cluster] * strength[:, None]
                + 0.05 * rng.standard_normal((n_items, dim))).astype(np.float32)
    user_cluster = rng.integers(0, n_clusters, n_users)
    user_emb = (directions[user_cluster] * 1.5 + 0.05 * rng.standard_normal((n_users, dim))).astype(np.float32)
    np.save(layout.user_embeddings, user_emb)
    np.save(layout.item_embeddings, item_emb)
    write_manifest(layout.retrieval, "retrieval", "test", ["user_embeddings.npy", "item_embeddings.npy"],
                   {"embedding_version": embedding_version, "dim": dim, "model": "planted"})
    ItemIndex.build(item_emb, "Flat", embedding_version).save(layout.index)
    write_manifest(layout.ranking, "ranking", "test", [], {"model": "EmbeddingRanker"})

    IdMap(USER_RAW(np.arange(n_users))).save(layout.user_map)
    IdMap(ITEM_RAW(np.arange(n_items))).save(layout.item_map)
    # seen: n_seen of each user's top-12 items, spread over train / val / test
    seen: list[set[int]] = []
    rows: dict[str, list[tuple[int, int]]] = {"train": [], "val": [], "test": []}
    for u in range(n_users):
        top = np.argsort(-(item_emb @ user_emb[u]))[:12]
        picked = rng.choice(top, size=n_seen, replace=False)
        seen.append({int(i) for i in picked})
        for j, i in enumerate(picked):
            rows[("train", "train", "val", "test")[j % 4]].append((u, int(i)))
    # extra train rows on other items so popularity and priors are non-trivial
    train_count = np.zeros(n_items, dtype=np.int64)
    popularity = rng.permutation(n_items)  # planted popularity order: popularity[0] most exposed
    extra_users = rng.integers(0, n_users, 400)
    weights = 1.0 / (1.0 + np.argsort(popularity))
    extra_items = rng.choice(n_items, size=400, p=weights / weights.sum())
    for u, i in zip(extra_users, extra_items):
        if int(i) not in seen[int(u)]:
            rows["train"].append((int(u), int(i)))
            seen[int(u)].add(int(i))
    for u, i in rows["train"]:
        train_count[i] += 1
    for split, pairs in rows.items():
        _write_split(layout.split(split), pairs, rng, t0=1.6e9 + {"train": 0, "val": 1e6, "test": 2e6}[split])
    _write_split(layout.split("eval_small"), [(0, 0)], rng, t0=1.7e9)
    pq.write_table(pa.table({"item_idx": pa.array(np.arange(n_items, dtype=np.int32)),
                             "video_id": pa.array(ITEM_RAW(np.arange(n_items))),
                             "train_count": pa.array(train_count),
                             "propensity": pa.array(np.clip(train_count / max(train_count.max(), 1), 1e-3, 1.0))},
                            schema=ITEM_PROPENSITY), str(layout.item_propensity))
    return Planted(Path(root), user_emb, item_emb, cluster, user_cluster, seen, train_count)


def _write_split(path: Path, pairs: list[tuple[int, int]], rng: np.random.Generator, t0: float) -> None:
    n = len(pairs)
    u = np.array([p[0] for p in pairs], dtype=np.int32)
    i = np.array([p[1] for p in pairs], dtype=np.int32)
    wr = rng.uniform(0, 2, n)
    table = pa.table({
        "user_id": pa.array(USER_RAW(u)), "video_id": pa.array(ITEM_RAW(i)),
        "user_idx": pa.array(u, pa.int32()), "item_idx": pa.array(i, pa.int32()),
        "timestamp": pa.array(t0 + np.arange(n, dtype=np.float64)), "date": pa.array(np.full(n, 20200704, np.int32)),
        "play_duration": pa.array((wr * 10000).astype(np.int64)), "video_duration": pa.array(np.full(n, 10000)),
        "watch_ratio": pa.array(wr), "label_click": pa.array((wr >= 0.5).astype(np.int8)),
        "label_value": pa.array(np.log1p(np.minimum(wr, 5.0)).astype(np.float32)),
    }, schema=INTERACTIONS)
    pq.write_table(table, str(path))
