"""Decision data: the serving path's candidates and scores for the evaluation users, with their true outcomes.

The Pareto sweep, the mock A/B test and the off-policy evaluation all ask "what would users get if we served
policy X?". They share one fixed input, computed ONCE by the same request-path code the Serve app runs
(:func:`graphrec_ray.serving.request_path.retrieve_batch` with an in-process embedding cache, no Redis, then
:func:`graphrec_ray.serving.request_path.rank` with the run's ranker), so any reranking policy can be replayed on it
without touching the models again.

Fields of :class:`DecisionData` (``U`` evaluation users, ``K`` candidates per user, ``n_items`` catalogue size):

* ``user_idx`` ``(U,)`` int64: contiguous user index (the ``small_matrix`` users, sorted, or a seeded subset).
* ``user_raw`` ``(U,)`` int64: the raw KuaiRec ``user_id`` of each row.
* ``item_idx`` ``(U, K)`` int64: each user's candidates, best first (FAISS order after seen removal), none seen.
* ``p_click`` ``(U, K)`` float32: the ranker's calibrated click probability (what serving scalarises).
* ``e_value`` ``(U, K)`` float32: the ranker's predicted ``E[log1p(min(watch_ratio, clip))]``.
* ``true_click`` ``(U, K)`` float64: the true click probability (``watch_ratio >= 0.5``).
* ``true_value`` ``(U, K)`` float64: the true expected value (``log1p`` of the watch ratio).
* ``item_unit`` ``(n_items, d)`` float32: unit-norm item embeddings, the vectors MMR compares
  (:class:`graphrec_ray.serving.versions.RerankPart`).
* ``item_category`` ``(n_items,)`` int64: each item's primary category (first tag of ``item_categories.feat``;
  -1 when the item has none).
* ``item_raw`` ``(n_items,)`` int64: raw ``video_id`` of each item index.
* ``truth_source``: ``"simulator"`` or ``"small_matrix"`` (how the ``true_*`` fields were made, below).

Where the truth comes from:

* **Simulator data** (``data_dir/ground_truth/`` exists): :class:`graphrec_ray.sources.simulator.ground_truth.GroundTruth`,
  ``true_click = GroundTruth.p_click`` and ``true_value = GroundTruth.e_value`` (``E[log1p(watch_ratio)]``,
  exact) for every (user, candidate); candidates come from the whole catalogue.
* **Real KuaiRec** (no ground truth): the fully observed ``small_matrix`` (``preprocess/eval_small.parquet``),
  ``true_click = 1[watch_ratio >= click_threshold]`` and ``true_value = log1p(min(watch_ratio, value_clip))``
  (mean over repeated views), thresholds from the preprocess manifest. Candidates are restricted to items
  observed for that user in ``small_matrix``: retrieval ranks the whole unseen catalogue (``k_candidates =
  n_items``, the same function) and the first ``K`` observed items are kept.

``K`` is ``k_candidates`` unless some user has fewer unseen (observed) candidates; then every user keeps that
smallest count, so the arrays stay rectangular.

The ranker sees the request context of each user's first ``small_matrix`` view (its timestamp, position 0).

Example::

    >>> dd = build_decision_data("runs/demo", n_users=50, seed=0)   # doctest: +SKIP
    >>> dd.p_click.shape, dd.truth_source                            # doctest: +SKIP
    ((50, 200), 'simulator')
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np

from graphrec_ray.errors import DataError

__all__ = ["DecisionData", "build_decision_data", "describe", "primary_categories", "TRUTH_SIMULATOR", "TRUTH_SMALL_MATRIX"]

TRUTH_SIMULATOR = "simulator"
TRUTH_SMALL_MATRIX = "small_matrix"
_PER_USER = ("user_idx", "user_raw", "item_idx", "p_click", "e_value", "true_click", "true_value")
_PER_ITEM = ("item_unit", "item_category", "item_raw")


@dataclass(frozen=True)
class DecisionData:
    """Candidates, predicted scores and true outcomes of the evaluation users (see the module docstring).

    Attributes:
        user_idx: ``(U,)`` int64.  user_raw: ``(U,)`` int64.
        item_idx: ``(U, K)`` int64 candidates, best first.
        p_click, e_value: ``(U, K)`` float32 ranker outputs.
        true_click, true_value: ``(U, K)`` float64 ground truth.
        item_unit: ``(n_items, d)`` float32 unit item embeddings.
        item_category: ``(n_items,)`` int64 primary category (-1 = none).
        item_raw: ``(n_items,)`` int64 raw video ids.
        truth_source: ``"simulator"`` or ``"small_matrix"``.
    """

    user_idx: np.ndarray
    user_raw: np.ndarray
    item_idx: np.ndarray
    p_click: np.ndarray
    e_value: np.ndarray
    true_click: np.ndarray
    true_value: np.ndarray
    item_unit: np.ndarray
    item_category: np.ndarray
    item_raw: np.ndarray
    truth_source: str

    def __post_init__(self) -> None:
        u = np.asarray(self.user_idx).shape
        k = np.asarray(self.item_idx).shape
        if len(u) != 1 or len(k) != 2 or k[0] != u[0]:
            raise ValueError(f"user_idx must be (U,) and item_idx (U, K), got {u} and {k}")
        for name in ("p_click", "e_value", "true_click", "true_value"):
            if np.shape(getattr(self, name)) != k:
                raise ValueError(f"{name} must have shape {k}, got {np.shape(getattr(self, name))}")
        n_items = np.shape(self.item_unit)[0]
        if np.shape(self.item_category) != (n_items,) or np.shape(self.item_raw) != (n_items,):
            raise ValueError("item_category and item_raw must be (n_items,) like item_unit's rows")
        if k[1] and (np.min(self.item_idx) < 0 or np.max(self.item_idx) >= n_items):
            raise ValueError(f"item_idx out of range [0, {n_items})")

    @property
    def n_users(self) -> int:
        return int(self.item_idx.shape[0])

    @property
    def n_candidates(self) -> int:
        return int(self.item_idx.shape[1])

    @property
    def n_items(self) -> int:
        return int(self.item_unit.shape[0])

    def subset(self, rows: np.ndarray) -> "DecisionData":
        """The users at positions ``rows`` (int array or boolean mask over ``U``); item tables are shared."""
        rows = np.asarray(rows)
        kw: dict[str, Any] = {f: getattr(self, f)[rows] for f in _PER_USER}
        kw.update({f: getattr(self, f) for f in _PER_ITEM})
        return DecisionData(truth_source=self.truth_source, **kw)

    def save(self, path: str | Path) -> Path:
        """Write every field to one ``.npz`` file (uncompressed); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            np.savez(fh, truth_source=np.array(self.truth_source),
                     **{f: getattr(self, f) for f in _PER_USER + _PER_ITEM})
        return path

    @classmethod
    def load(cls, path: str | Path) -> "DecisionData":
        """Read a file written by :meth:`save`.

        Raises:
            DataError: missing file or missing fields.
        """
        path = Path(path)
        if not path.is_file():
            raise DataError(f"decision data file not found: {path}")
        with np.load(path, allow_pickle=False) as z:
            missing = [f.name for f in fields(cls) if f.name not in z.files]
            if missing:
                raise DataError(f"{path}: not a decision-data file (missing {missing})")
            kw = {f: z[f] for f in _PER_USER + _PER_ITEM}
            return cls(truth_source=str(z["truth_source"]), **kw)


# ------------------------------------------------------------------------------------------------ building


def primary_categories(data_dir: str | Path, item_raw: np.ndarray) -> np.ndarray:
    """``(n_items,)`` int64 first tag of ``item_categories.feat`` for raw ``video_id`` s ``item_raw``; -1 if none.

    Raises:
        DataError: ``data_dir`` has no readable ``item_categories.csv``.
    """
    from graphrec_ray.sources.kuairec import read_item_categories

    table = read_item_categories(data_dir)
    vids = table.column("video_id").to_numpy()
    feats = table.column("feat").to_pylist()
    item_raw = np.asarray(item_raw, dtype=np.int64)
    order = np.argsort(item_raw)
    pos = np.searchsorted(item_raw[order], vids)
    out = np.full(item_raw.size, -1, dtype=np.int64)
    for p, v, f in zip(pos, vids, feats):
        if p < item_raw.size and item_raw[order[p]] == v and f:
            out[order[p]] = int(f[0])
    return out


def _ranker_loader(spec: str, data_dir: Path | None) -> Callable[[Path], Any]:
    from graphrec_ray.serving.versions import resolve_loader

    loader = resolve_loader(spec)
    if data_dir is not None and "data_dir" in inspect.signature(loader).parameters:
        return lambda rd: loader(rd, data_dir=data_dir)
    return loader


def _eval_users(eval_small: dict[str, np.ndarray], n_users: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted evaluation ``user_idx`` (seeded subset of ``n_users``) and each one's first view timestamp."""
    u = eval_small["user_idx"].astype(np.int64)
    users = np.unique(u)
    if users.size == 0:
        raise DataError("preprocess/eval_small.parquet has no users: no small_matrix users to evaluate")
    if n_users is not None and n_users < users.size:
        if n_users < 1:
            raise DataError(f"n_users must be >= 1, got {n_users}")
        users = np.sort(np.random.default_rng(seed).choice(users, size=n_users, replace=False))
    ts = eval_small["timestamp"].astype(np.float64)
    first = np.full(users.size, np.nan)
    pos = np.searchsorted(users, u)
    ok = (pos < users.size) & (users[np.minimum(pos, users.size - 1)] == u) & np.isfinite(ts)
    np.fmin.at(first, pos[ok], ts[ok])
    fallback = float(np.nanmax(ts)) if np.isfinite(ts).any() else 0.0
    return users, np.where(np.isfinite(first), first, fallback)


def _observed_truth(eval_small: dict[str, np.ndarray], click_threshold: float,
                    value_clip: float) -> dict[int, dict[int, tuple[float, float]]]:
    """Per user: ``{item_idx: (click, value)}`` from the fully observed block (means over repeated views)."""
    u = eval_small["user_idx"].astype(np.int64)
    i = eval_small["item_idx"].astype(np.int64)
    wr = eval_small["watch_ratio"].astype(np.float64)
    key = u * (1 << 32) + i
    uniq, inv = np.unique(key, return_inverse=True)
    cnt = np.bincount(inv).astype(np.float64)
    click = np.bincount(inv, weights=(wr >= click_threshold).astype(np.float64)) / cnt
    value = np.bincount(inv, weights=np.log1p(np.minimum(wr, value_clip))) / cnt
    out: dict[int, dict[int, tuple[float, float]]] = {}
    for k, c, v in zip(uniq, click, value):
        out.setdefault(int(k >> 32), {})[int(k & 0xFFFFFFFF)] = (float(c), float(v))
    return out


def build_decision_data(run_dir: str | Path, data_dir: str | Path | None = None, n_users: int | None = None,
                        k_candidates: int = 200, seed: int = 0, serve_config: Any = None) -> DecisionData:
    """Run retrieval and ranking once for the evaluation users of ``run_dir`` and attach the truth.

    Args:
        run_dir: a finished run (preprocess, retrieval, index and ranking stages).
        data_dir: raw data folder (item categories, simulator ground truth); default: the one in the preprocess
            manifest.
        n_users: evaluate a seeded random subset of this many ``small_matrix`` users (default ``None``: all).
        k_candidates: candidates per user ``K`` (default 200, the serving default).
        seed: seed of the user subset.
        serve_config: a :class:`graphrec_ray.serving.config.ServeConfig` for the ranker loader, seen splits and
            priors (default: its defaults, i.e. what ``configs/serve.yaml`` serves).

    Returns:
        :class:`DecisionData`.

    Raises:
        DataError: missing stages, no ``small_matrix`` users, no item categories.
    """
    import pyarrow.parquet as pq

    from graphrec_ray.layout import RunLayout
    from graphrec_ray.manifest import MANIFEST_NAME, read_manifest
    from graphrec_ray.ranking.context import RequestContext
    from graphrec_ray.serving.cache import EmbeddingCache
    from graphrec_ray.serving.config import ServeConfig
    from graphrec_ray.serving.request_path import Candidates, rank, retrieve_batch
    from graphrec_ray.serving.versions import load_version
    from graphrec_ray.sources.simulator.ground_truth import GT_DIR, GroundTruth

    run_dir = Path(run_dir)
    layout = RunLayout(run_dir)
    if k_candidates < 1:
        raise DataError(f"k_candidates must be >= 1, got {k_candidates}")
    if not layout.split("eval_small").is_file():
        raise DataError(f"missing {layout.split('eval_small')} (run preprocess first)")
    pre = read_manifest(layout.preprocess) if (layout.preprocess / MANIFEST_NAME).is_file() else {}
    pre_cfg = pre.get("config", {})
    if data_dir is None:
        recorded = pre.get("data_dir") or pre_cfg.get("data_dir")
        if not recorded:
            raise DataError(f"no data_dir recorded in {layout.preprocess}/manifest.json; pass data_dir")
        data_dir = recorded
    data_dir = Path(data_dir)
    cfg = serve_config if serve_config is not None else ServeConfig()

    t = pq.read_table(str(layout.split("eval_small")), columns=["user_idx", "item_idx", "timestamp", "watch_ratio"])
    eval_small = {c: t.column(c).to_numpy() for c in t.column_names}
    users, first_ts = _eval_users(eval_small, n_users, seed)

    version = load_version(run_dir, _ranker_loader(cfg.ranker_loader, data_dir), cfg.seen_splits,
                           cfg.cold_start_pool, cfg.prior_strength)
    item_raw = version.ids.item_map.raw_ids.astype(np.int64)
    n_items = item_raw.size
    simulator = (data_dir / GT_DIR).is_dir()
    observed = None if simulator else _observed_truth(
        eval_small, float(pre_cfg.get("click_threshold", 0.5)), float(pre_cfg.get("value_clip", 5.0)))

    cache = EmbeddingCache(None)  # in-process embedding table, the path Serve takes when Redis is off
    fetch = k_candidates if simulator else n_items
    cands = retrieve_batch(version.retrieval, version.version, users.tolist(), cache, fetch)
    kept: list[np.ndarray] = []
    for c in cands:
        ids = c.item_idx
        if observed is not None:
            seen_ok = observed.get(c.user_idx, {})
            ids = ids[np.fromiter((int(i) in seen_ok for i in ids), dtype=bool, count=ids.size)]
        kept.append(ids[:k_candidates])
    k = min(x.size for x in kept)
    if k == 0:
        raise DataError("some evaluation user has no unseen candidate items")
    item_idx = np.stack([x[:k] for x in kept]).astype(np.int64)
    p_click = np.empty(item_idx.shape, np.float32)
    e_value = np.empty(item_idx.shape, np.float32)
    for row, c in enumerate(cands):
        sub = Candidates(c.version, c.user_idx, item_idx[row], c.user_emb, c.cache_hit, c.cold_start)
        scored = rank(version.ranking, sub, RequestContext(timestamp=float(first_ts[row])))
        p_click[row], e_value[row] = scored.p_click, scored.e_value

    user_raw = version.ids.user_map.to_raw(users).astype(np.int64)
    if simulator:
        gt = GroundTruth.load(data_dir)
        true_click = np.stack([gt.p_click(user_raw[r:r + 1], item_raw[item_idx[r]])[0] for r in range(users.size)])
        true_value = np.stack([gt.e_value(user_raw[r:r + 1], item_raw[item_idx[r]])[0] for r in range(users.size)])
        source = TRUTH_SIMULATOR
    else:
        assert observed is not None
        pairs = [[observed[int(u)][int(i)] for i in row] for u, row in zip(users, item_idx)]
        arr = np.asarray(pairs, dtype=np.float64).reshape(users.size, k, 2)
        true_click, true_value = arr[..., 0], arr[..., 1]
        source = TRUTH_SMALL_MATRIX
    return DecisionData(user_idx=users.astype(np.int64), user_raw=user_raw, item_idx=item_idx, p_click=p_click,
                        e_value=e_value, true_click=true_click.astype(np.float64),
                        true_value=true_value.astype(np.float64),
                        item_unit=np.ascontiguousarray(version.rerank.item_unit, dtype=np.float32),
                        item_category=primary_categories(data_dir, item_raw), item_raw=item_raw,
                        truth_source=source)


def describe(dd: DecisionData) -> str:
    """One-line summary (users, candidates, truth source, mean true click / value of the top candidate)."""
    return json.dumps({"users": dd.n_users, "candidates": dd.n_candidates, "items": dd.n_items,
                       "truth": dd.truth_source, "top1_true_click": round(float(dd.true_click[:, 0].mean()), 4),
                       "top1_true_value": round(float(dd.true_value[:, 0].mean()), 4)})
