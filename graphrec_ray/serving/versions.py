"""Model versions: everything one request needs, loaded together and switched atomically.

A *version* is one run directory: its user/item id maps, user and item embeddings, the FAISS index, the ranker
(MMoE + calibrator, via an injectable loader) and the tables derived from the logs (seen items, popularity,
cold-start priors). Its id, :func:`version_id`, is a digest of the stage manifests, so two directories with the
same artifacts share an id and a changed artifact gives a new one.

How a replica holds versions and switches them without mixing them within a request is
:mod:`graphrec_ray.serving.version_slots`.

Each ``load_*_part`` reads only what its stage needs, so the graph's deployments stay small, and first checks
those files against the checksums of their stage manifests (:func:`verify_files`): a corrupt, truncated or
replaced file raises :class:`CorruptArtifact`, so a reload to it is refused and the previous version keeps serving.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
import pyarrow.parquet as pq

from graphrec_ray.errors import DataError, UserError
from graphrec_ray.ids import IdMap
from graphrec_ray.index.faiss_index import ItemIndex
from graphrec_ray.interactions import SeenPolicy, load_seen
from graphrec_ray.layout import RunLayout
from graphrec_ray.manifest import MANIFEST_NAME, sha256_file
from graphrec_ray.ranking.context import RequestContext
from graphrec_ray.rerank.mmr import unit_rows



class Ranker(Protocol):
    """What serving needs from a ranker (``graphrec_ray.ranking.bundle.RankerBundle`` implements it)."""

    version: str

    def score(self, user_idx: int, item_idx: np.ndarray, ctx: RequestContext,
              user_emb: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(p_click, e_value)``, each ``(K,)`` float32, for ``item_idx`` ``(K,)``."""
        ...


def version_id(run_dir: str | Path) -> str:
    """12-hex digest of the retrieval, index and ranking manifests of ``run_dir`` (missing ones are skipped).

    Raises:
        DataError: neither a retrieval nor an index manifest exists (not a servable run directory).
    """
    layout = RunLayout(Path(run_dir))
    h = hashlib.sha256()
    found = 0
    for stage_dir in (layout.retrieval, layout.index, layout.ranking):
        m = stage_dir / MANIFEST_NAME
        if m.is_file():
            h.update(stage_dir.name.encode() + b"\0" + m.read_bytes() + b"\0")
            found += stage_dir.name in ("retrieval", "index")
    if found < 2:
        raise DataError(f"{run_dir} is not a servable run directory (needs retrieval/ and index/ manifests)")
    return h.hexdigest()[:12]


class CorruptArtifact(DataError):
    """A file serving reads does not match the checksum its stage manifest lists (corrupt, truncated, replaced)."""


def verify_files(*paths: Path) -> None:
    """Check each file against the checksum in ``<its folder>/manifest.json`` (stage folders; ``serving_tables/``
    files are checked by the ranker's loader). A file its manifest does not list is not checked (runs written
    before a stage listed it).

    Raises:
        CorruptArtifact: a listed file is missing or its SHA-256 differs (the message names the file).
    """
    for path in paths:
        manifest = path.parent / MANIFEST_NAME
        if not manifest.is_file():
            continue
        entry = json.loads(manifest.read_text()).get("files", {}).get(path.name)
        if entry is None or "sha256" not in entry:
            continue
        try:
            ok = sha256_file(path) == entry["sha256"]
        except OSError:
            ok = False
        if not ok:
            raise CorruptArtifact(f"{path} does not match the checksum in {manifest} (corrupt, truncated or replaced)")


def resolve_loader(spec: str) -> Callable[[Path], Any]:
    """Import ``"package.module:attr.attr"`` and return the callable (e.g. ``RankerBundle.load``)."""
    if ":" not in spec:
        raise UserError(f"ranker_loader must look like 'module:callable', got '{spec}'")
    mod_name, attr_path = spec.split(":", 1)
    try:
        obj: Any = importlib.import_module(mod_name)
    except ImportError as exc:
        raise UserError(f"cannot import ranker loader module '{mod_name}': {exc}") from None
    for part in attr_path.split("."):
        if not hasattr(obj, part):
            raise UserError(f"ranker loader '{spec}': '{part}' not found")
        obj = getattr(obj, part)
    if not callable(obj):
        raise UserError(f"ranker loader '{spec}' is not callable")
    return obj


# ----------------------------------------------------------------------------------------------- parts


@dataclass(frozen=True)
class IdPart:
    """Id maps (the ingress translates raw KuaiRec ids)."""

    user_map: IdMap
    item_map: IdMap


@dataclass(frozen=True)
class RetrievalPart:
    """Candidate generation.

    Attributes:
        user_emb: ``(n_users, d)`` float32 in-process embedding table (the cache's fail-open source).
        index: FAISS index over item embeddings.
        seen_indptr: ``(n_users + 1,)`` int64 CSR row pointers of already-seen items.
        seen_items: ``(nnz,)`` int32 item_idx, sorted within each user's row.
        popular: ``(cold_start_pool,)`` int64 item_idx by descending training exposure count.
    """

    user_emb: np.ndarray
    index: ItemIndex
    seen_indptr: np.ndarray
    seen_items: np.ndarray
    popular: np.ndarray

    def seen(self, user_idx: int) -> np.ndarray:
        """Sorted item_idx ``(S,)`` already seen by ``user_idx``."""
        return self.seen_items[self.seen_indptr[user_idx]: self.seen_indptr[user_idx + 1]]


@dataclass(frozen=True)
class RankingPart:
    """Scoring: the ranker, plus smoothed per-item priors for cold-start users.

    Attributes:
        prior_click: ``(n_items,)`` float32 Beta-smoothed training click rate per item.
        prior_value: ``(n_items,)`` float32 smoothed mean ``label_value`` per item.
    """

    ranker: Any
    prior_click: np.ndarray
    prior_value: np.ndarray


@dataclass(frozen=True)
class RerankPart:
    """Diversity: ``(n_items, d)`` unit-norm item embeddings for MMR cosine similarities."""

    item_unit: np.ndarray


@dataclass(frozen=True)
class ModelVersion:
    """All parts of one version, for the in-process path (plain FastAPI, tests, benchmarks)."""

    version: str
    run_dir: Path
    ids: IdPart
    retrieval: RetrievalPart
    ranking: RankingPart
    rerank: RerankPart


def _read_columns(path: Path, columns: list[str]) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DataError(f"missing {path} (run preprocess first)")
    t = pq.read_table(str(path), columns=columns)
    return {c: t.column(c).to_numpy() for c in columns}


def _embedding_version(layout: RunLayout) -> str:
    m = layout.retrieval / MANIFEST_NAME
    if not m.is_file():
        raise DataError(f"missing {m} (run train-retrieval first)")
    return str(json.loads(m.read_text()).get("embedding_version", "unknown"))


def _load_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"missing {path} (run train-retrieval first)")
    arr = np.load(path, mmap_mode=None)
    if arr.ndim != 2:
        raise DataError(f"{path} must be 2-D, got shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def load_ids(run_dir: str | Path) -> IdPart:
    """Read ``preprocess/{user,item}_map.parquet``."""
    layout = RunLayout(Path(run_dir))
    for p in (layout.user_map, layout.item_map):
        if not p.is_file():
            raise DataError(f"missing {p} (run preprocess first)")
    verify_files(layout.user_map, layout.item_map)
    return IdPart(IdMap.load(layout.user_map), IdMap.load(layout.item_map))


def load_retrieval_part(run_dir: str | Path, seen_splits: tuple[str, ...] = ("train", "val", "test"),
                        cold_start_pool: int = 200) -> RetrievalPart:
    """User embeddings, FAISS index (checked against the embedding version), seen-item CSR, popular items."""
    layout = RunLayout(Path(run_dir))
    verify_files(layout.user_embeddings, *(layout.split(s) for s in seen_splits), layout.item_propensity)
    user_emb = _load_npy(layout.user_embeddings)
    index = ItemIndex.load(layout.index, expect_embedding_version=_embedding_version(layout))
    if index.dim != user_emb.shape[1]:
        raise DataError(f"index dim {index.dim} != user embedding dim {user_emb.shape[1]}")
    # serving's seen-item policy, from the one home of it (every row of the given splits)
    indptr, seen_items = load_seen(layout, user_emb.shape[0], SeenPolicy(tuple(seen_splits)))
    counts = _train_counts(layout, index.ntotal)
    popular = np.lexsort((np.arange(counts.size), -counts))[:cold_start_pool].astype(np.int64)
    return RetrievalPart(user_emb, index, indptr, seen_items, popular)


def _train_counts(layout: RunLayout, n_items: int) -> np.ndarray:
    if layout.item_propensity.is_file():
        cols = _read_columns(layout.item_propensity, ["item_idx", "train_count"])
        counts = np.zeros(n_items, dtype=np.int64)
        counts[cols["item_idx"].astype(np.int64)] = cols["train_count"]
        return counts
    cols = _read_columns(layout.split("train"), ["item_idx"])
    return np.bincount(cols["item_idx"].astype(np.int64), minlength=n_items)


def load_ranking_part(run_dir: str | Path, ranker_loader: Callable[[Path], Any] | str,
                      prior_strength: float = 20.0) -> RankingPart:
    """The ranker (``ranker_loader(run_dir)``) and Beta-smoothed item priors from ``train.parquet``.

    Prior of item i: ``(sum_i + m * global_mean) / (n_i + m)`` with ``m = prior_strength``.
    """
    run_dir = Path(run_dir)
    layout = RunLayout(run_dir)
    verify_files(layout.ranker_model, layout.calibrator, layout.split("train"), layout.item_map)
    loader = resolve_loader(ranker_loader) if isinstance(ranker_loader, str) else ranker_loader
    ranker = loader(run_dir)
    n_items = len(IdMap.load(layout.item_map)) if layout.item_map.is_file() else None
    cols = _read_columns(layout.split("train"), ["item_idx", "label_click", "label_value"])
    item = cols["item_idx"].astype(np.int64)
    n_items = n_items or int(item.max()) + 1
    m = float(prior_strength)
    n = np.bincount(item, minlength=n_items).astype(np.float64)
    priors = []
    for col in ("label_click", "label_value"):
        y = cols[col].astype(np.float64)
        mean = float(y.mean()) if y.size else 0.0
        priors.append(((np.bincount(item, weights=y, minlength=n_items) + m * mean) / (n + m)).astype(np.float32))
    return RankingPart(ranker, priors[0], priors[1])


def load_rerank_part(run_dir: str | Path) -> RerankPart:
    """Unit-norm item embeddings ``(n_items, d)``."""
    path = RunLayout(Path(run_dir)).item_embeddings
    verify_files(path)
    return RerankPart(unit_rows(_load_npy(path)))


def load_version(run_dir: str | Path, ranker_loader: Callable[[Path], Any] | str,
                 seen_splits: tuple[str, ...] = ("train", "val", "test"), cold_start_pool: int = 200,
                 prior_strength: float = 20.0) -> ModelVersion:
    """Load every part of the version in ``run_dir`` (nothing is shared with any other version)."""
    run_dir = Path(run_dir)
    vid = version_id(run_dir)
    return ModelVersion(vid, run_dir, load_ids(run_dir),
                        load_retrieval_part(run_dir, seen_splits, cold_start_pool),
                        load_ranking_part(run_dir, ranker_loader, prior_strength),
                        load_rerank_part(run_dir))


# ------------------------------------------------------------------------------------- switching
