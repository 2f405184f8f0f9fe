"""A FAISS inner-product index over item embeddings, built from a factory string, saved with a manifest.

Scores are inner products (LightGCN scores a (user, item) pair by ``<e_u, e_i>``), so every index is built
with ``faiss.METRIC_INNER_PRODUCT``. Supported factory strings include ``Flat`` (exact), ``IVF{n},Flat``,
``IVF{n},PQ{m}``, ``IVF{n},PQ{m},RFlat`` (PQ candidates re-scored exactly) and ``HNSW{M}``.

Example::

    >>> emb = np.eye(4, dtype=np.float32)
    >>> index = ItemIndex.build(emb, factory="Flat", embedding_version="v1")
    >>> scores, ids = index.search(emb[:1], k=2)
    >>> int(ids[0, 0])
    0
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from graphrec_ray.errors import DataError, UserError
from graphrec_ray.manifest import read_manifest, sha256_file, write_manifest

INDEX_FILE = "items.faiss"


def _as_f32(x: np.ndarray, name: str) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n, d), got shape {x.shape}")
    return x


def make_index(dim: int, factory: str) -> faiss.Index:
    """An empty inner-product index for ``dim``-dimensional vectors from a FAISS factory string.

    Raises:
        UserError: the factory string is not understood by FAISS.
    """
    try:
        return faiss.index_factory(int(dim), factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
        raise UserError(f"invalid FAISS factory string '{factory}': {first}") from None


def set_search_params(index: faiss.Index, nprobe: int | None = None, ef_search: int | None = None,
                      refine_k_factor: float | None = None) -> None:
    """Set query-time knobs where the index has them (silently skipped where it has not).

    Args:
        nprobe: IVF lists visited per query (IVF, IVF-PQ, IVF-PQ-RFlat).
        ef_search: HNSW search breadth.
        refine_k_factor: for ``,RFlat`` indexes, how many times ``k`` compressed hits are re-scored exactly.
    """
    ps = faiss.ParameterSpace()
    if nprobe is not None and _ivf_of(index) is not None:
        ps.set_index_parameter(index, "nprobe", int(nprobe))
    if ef_search is not None and _hnsw_of(index) is not None:
        ps.set_index_parameter(index, "efSearch", int(ef_search))
    real = faiss.downcast_index(index)
    if refine_k_factor is not None and isinstance(real, faiss.IndexRefine):
        real.k_factor = float(refine_k_factor)


def _ivf_of(index: faiss.Index) -> Any:
    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None


def _hnsw_of(index: faiss.Index) -> Any:
    real = faiss.downcast_index(index)
    if isinstance(real, faiss.IndexRefine):
        real = faiss.downcast_index(real.base_index)
    return real if isinstance(real, faiss.IndexHNSW) else None


def train_sample(emb: np.ndarray, max_rows: int, seed: int) -> np.ndarray:
    """Rows of ``emb`` ``(n, d)`` to train on: all when ``n <= max_rows``, else a seeded sample ``(max_rows, d)``."""
    n = emb.shape[0]
    if n <= max_rows:
        return emb
    rows = np.sort(np.random.default_rng(seed).choice(n, size=max_rows, replace=False))
    return emb[rows]


@dataclass
class ItemIndex:
    """A built FAISS index plus what its manifest records.

    Attributes:
        index: the FAISS index; ids are ``item_idx`` (row numbers of the embedding matrix).
        factory: factory string it was built from.
        nprobe, ef_search, refine_k_factor: query-time knobs (applied on build and load).
        embedding_version: ``embedding_version`` of the retrieval embeddings it indexes.
    """

    index: faiss.Index
    factory: str
    embedding_version: str
    nprobe: int = 16
    ef_search: int = 128
    refine_k_factor: float = 4.0

    @classmethod
    def build(cls, item_emb: np.ndarray, factory: str = "Flat", embedding_version: str = "unknown",
              nprobe: int = 16, ef_search: int = 128, refine_k_factor: float = 4.0,
              max_train: int = 100_000, seed: int = 0) -> "ItemIndex":
        """Train (on at most ``max_train`` seeded rows) and fill an index with ``item_emb`` ``(n_items, d)``."""
        emb = _as_f32(item_emb, "item_emb")
        if emb.shape[0] == 0:
            raise DataError("cannot build an index over zero items")
        index = make_index(emb.shape[1], factory)
        if not index.is_trained:
            sample = train_sample(emb, max_train, seed)
            try:
                index.train(sample)
            except RuntimeError as exc:
                raise UserError(f"cannot train '{factory}' on {sample.shape[0]} vectors "
                                f"(too few for this index?): {str(exc).strip().splitlines()[-1]}") from None
        index.add(emb)
        out = cls(index, factory, embedding_version, nprobe, ef_search, refine_k_factor)
        out.apply_params()
        return out

    def apply_params(self) -> None:
        """Apply ``nprobe`` / ``ef_search`` / ``refine_k_factor`` to the FAISS index."""
        set_search_params(self.index, self.nprobe, self.ef_search, self.refine_k_factor)

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items by inner product for each query.

        Args:
            queries: ``(B, d)`` user embeddings.
            k: hits per query; capped at ``ntotal``.

        Returns:
            ``(scores, ids)``, each ``(B, min(k, ntotal))``; ``scores`` float32 descending, ``ids`` int64
            ``item_idx``. Approximate indexes may return fewer hits; missing slots hold id ``-1``.
        """
        q = _as_f32(queries, "queries")
        k = max(1, min(int(k), self.ntotal))
        scores, ids = self.index.search(q, k)
        return scores, ids

    def save(self, out_dir: str | Path, config_hash: str = "", extra: dict[str, Any] | None = None) -> Path:
        """Write ``out_dir/items.faiss`` and ``out_dir/manifest.json`` (factory, knobs, embedding_version, sha256)."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.index, str(out_dir / INDEX_FILE))
        info = {"factory": self.factory, "nprobe": self.nprobe, "ef_search": self.ef_search,
                "refine_k_factor": self.refine_k_factor, "embedding_version": self.embedding_version,
                "ntotal": self.ntotal, "dim": self.dim, "metric": "inner_product",
                "checksum": sha256_file(out_dir / INDEX_FILE), **(extra or {})}
        return write_manifest(out_dir, "index", config_hash, [INDEX_FILE], info)

    @classmethod
    def load(cls, index_dir: str | Path, expect_embedding_version: str | None = None) -> "ItemIndex":
        """Read an index saved by :meth:`save`, checking its checksum (and embedding version when given).

        Raises:
            DataError: missing files, checksum mismatch, or an index built from other embeddings.
        """
        index_dir = Path(index_dir)
        path = index_dir / INDEX_FILE
        try:
            doc = read_manifest(index_dir)
        except FileNotFoundError:
            raise DataError(f"no index manifest in {index_dir} (run build-index first)") from None
        except json.JSONDecodeError:
            raise DataError(f"{index_dir}/manifest.json is not valid JSON") from None
        if not path.is_file():
            raise DataError(f"index file missing: {path}")
        if sha256_file(path) != doc.get("checksum"):
            raise DataError(f"{path}: checksum does not match its manifest (corrupt or replaced file)")
        version = str(doc.get("embedding_version", "unknown"))
        if expect_embedding_version is not None and version != expect_embedding_version:
            raise DataError(f"{path} indexes embedding_version {version}, "
                            f"but the embeddings are {expect_embedding_version}: rebuild the index")
        out = cls(faiss.read_index(str(path)), str(doc["factory"]), version, int(doc.get("nprobe", 16)),
                  int(doc.get("ef_search", 128)), float(doc.get("refine_k_factor", 4.0)))
        out.apply_params()
        return out


def exact_topk(item_emb: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Exact top-``k`` item ids ``(B, k)`` by inner product (ground truth for recall)."""
    flat = faiss.IndexFlatIP(item_emb.shape[1])
    flat.add(_as_f32(item_emb, "item_emb"))
    _, ids = flat.search(_as_f32(queries, "queries"), min(k, item_emb.shape[0]))
    return ids


def recall_at_k(approx_ids: np.ndarray, exact_ids: np.ndarray) -> float:
    """Mean over queries of ``|approx ∩ exact| / |exact|`` for ``(B, k)`` id arrays (``-1`` ignored)."""
    hits = 0
    total = 0
    for a, e in zip(approx_ids, exact_ids):
        e = e[e >= 0]
        hits += np.intersect1d(a[a >= 0], e).size
        total += e.size
    return hits / max(total, 1)
