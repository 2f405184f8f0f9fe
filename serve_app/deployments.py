"""The graph topology: FastAPI ingress → Retrieval → Ranking (batched) → Reranking, each scaled on its own.

Each stage wraps the plain functions of :mod:`graphrec_ray.serving.request_path` (the same ones the collocated
topology, :mod:`serve_app.collocated`, calls in-process) and keeps its own part of each model version in a
:class:`~graphrec_ray.serving.version_slots.PartCache`. The ingress captures the current version (one reference,
:class:`~graphrec_ray.serving.version_slots.VersionSlot`) once per request and passes its :class:`VersionRef` to every
stage, so a request never mixes versions. Every replica (stages included) follows the application's version board
(:mod:`serve_app.version_pointer`): a reload loads the new part in every replica before any ingress switches.

The ``*Stage`` classes and :class:`GraphFront` are plain Python (unit tests wire them with fake handles); the
Serve deployments ``Retrieval``, ``Ranking``, ``Reranking`` and ``Ingress`` add batching, the board and warm-up.
Nothing is loaded at import time.

Failures: each stage runs 2 replicas by default (``ServeConfig``); the ingress retries a stage call once when the
replica it reached died mid-call (:meth:`GraphFront.call`; Serve's router has dropped the dead one by then).
Metrics: every deployment records its start (``graphrec_replica_starts``), the ingress the request metrics and
the model version, ``Retrieval`` (where the cache lives) the cache events and breaker state, all exported by
Ray's metrics agent (:mod:`serve_app.metrics_ray`).
"""


import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray import serve
from ray.exceptions import ActorUnavailableError, RayActorError

from graphrec_ray.ids import UNKNOWN
from graphrec_ray.ranking.context import RequestContext
from graphrec_ray.serving.config import ServeConfig
from graphrec_ray.serving.telemetry import ServingMetrics
from graphrec_ray.serving.request_path import (
    Candidates, Reranked, Scored, lookup_item, lookup_user, pair_candidates, rank, rerank, response_body,
    retrieve_batch,
)
from graphrec_ray.serving.version_slots import PartCache, VersionSlot
from graphrec_ray.serving.versions import (
    IdPart, load_ids, version_id,
)
from serve_app.loaders import Loaders, loaders_from
from serve_app.http_front import HttpFront, apply_rerank_user_config, make_api
from serve_app.metrics_feedback import FeedbackFront, UnknownItem, add_feedback_route
from serve_app.metrics_ray import replica_metrics
from serve_app.version_pointer import Follower, board_handle, follow

logger = logging.getLogger("ray.serve")
# a stage replica that died (killed, OOM, node lost) mid-call: Serve's router drops it, so one retry of the
# idempotent stage call lands on a live replica (measured: benchmarks/replica_failure.py)
REPLICA_GONE = (RayActorError, ActorUnavailableError)


@dataclass(frozen=True)
class VersionRef:
    """What a request carries between stages: the version id and the directory it is loaded from."""

    version: str
    run_dir: str


def make_ref(run_dir: str | Path) -> VersionRef:
    """:class:`VersionRef` of the run directory (absolute path, manifest digest)."""
    path = Path(run_dir).resolve()
    return VersionRef(version_id(path), str(path))


class _Stage:
    """What the stages share: a cache of loaded version parts (``self.parts``) and the board hooks."""

    stage = "stage"  # name used in health errors
    parts: PartCache
    follower: Follower | None = None
    metrics: ServingMetrics | None = None  # set by the Serve deployments (replica starts, cache events)

    def warm(self, ref: VersionRef) -> str:
        """Load ``ref``'s part now; returns the version id."""
        self.parts.get(ref.version, ref.run_dir)
        return ref.version

    async def prepare(self, run_dir: str, version: str) -> None:
        await asyncio.to_thread(self.parts.get, version, run_dir)

    async def commit(self, run_dir: str, version: str) -> None:
        """Stages serve whatever version a request names; committing only makes sure it is loaded."""
        await self.prepare(run_dir, version)

    async def join_board(self, board_name: str | None, run_dir: str) -> None:
        if board_name:
            ref = make_ref(run_dir)
            board = board_handle(f"{serve.get_replica_context().app_name}:{board_name}", ref.run_dir, ref.version)
            self.follower = await follow(board, self.prepare, self.commit, ref.version)

    def started(self, t0: float) -> None:
        """In a Serve replica: switch to Ray-exported metrics and record this start (``t0``: perf_counter)."""
        self.metrics = replica_metrics()
        loaded = self.parts.loaded()
        self.metrics.replica_started(time.perf_counter() - t0, loaded[-1] if loaded else "")

    def check_health(self) -> None:
        if not self.parts.loaded():
            raise RuntimeError(f"{self.stage}: no model version loaded")

    def __del__(self) -> None:
        if self.follower is not None:
            self.follower.stop()


class RetrievalStage(_Stage):
    """User embedding (Redis cache, fail-open), FAISS candidates, seen-item removal."""

    stage = "retrieval"

    def __init__(self, cfg: ServeConfig, run_dir: str, loaders: Loaders | None = None) -> None:
        import faiss

        faiss.omp_set_num_threads(cfg.faiss_threads)
        self.cfg = cfg
        loaders = loaders or loaders_from(cfg)
        self.parts = PartCache(loaders.retrieval, cfg.max_loaded_versions)
        self.cache = loaders.cache()
        self.metrics = ServingMetrics()
        self.warm(make_ref(run_dir))  # the first version loads before the replica takes traffic

    def retrieve_many(self, refs: list[VersionRef], user_idx: list[int]) -> list[Candidates]:
        """Candidates for a batch of ``(version, user_idx)`` requests (grouped by version)."""
        out: list[Candidates | None] = [None] * len(refs)
        try:
            for vid in dict.fromkeys(r.version for r in refs):
                rows = [i for i, r in enumerate(refs) if r.version == vid]
                part = self.parts.get(vid, refs[rows[0]].run_dir)
                cands = retrieve_batch(part, vid, [user_idx[i] for i in rows], self.cache, self.cfg.k_candidates)
                for i, c in zip(rows, cands):
                    out[i] = c
        finally:
            s = self.cache.stats  # the cache lives here in the graph: its events and breaker state
            self.metrics.sync_cache(s.hits, s.misses, s.errors, s.skipped, self.cache.breaker.state)
        return out  # type: ignore[return-value]

    def breaker_state(self) -> str:
        return self.cache.breaker.state


class RankingStage(_Stage):
    """Calibrated ``p_click`` and ``e_value`` from the ranker (MMoE + Platt)."""

    stage = "ranking"

    def __init__(self, cfg: ServeConfig, run_dir: str, loaders: Loaders | None = None) -> None:
        self.parts = PartCache((loaders or loaders_from(cfg)).ranking, cfg.max_loaded_versions)
        self.warm(make_ref(run_dir))  # the first version loads before the replica takes traffic

    def score_many(self, refs: list[VersionRef], cands: list[Candidates], timestamps: list[float]) -> list[Scored]:
        """Score each request's candidates with the ranker of that request's version."""
        out = []
        for ref, cand, ts in zip(refs, cands, timestamps):
            if cand.version != ref.version:
                raise RuntimeError(f"version mix: candidates of {cand.version} for request of {ref.version}")
            out.append(rank(self.parts.get(ref.version, ref.run_dir), cand, RequestContext(timestamp=ts)))
        return out


class RerankingStage(_Stage):
    """Scalarisation ``w_engagement * p_click + w_value * e_value_normalised`` and MMR diversity."""

    stage = "reranking"

    def __init__(self, cfg: ServeConfig, run_dir: str, loaders: Loaders | None = None) -> None:
        self._base_cfg = self.cfg = cfg
        self.parts = PartCache((loaders or loaders_from(cfg)).rerank, cfg.max_loaded_versions)
        self.warm(make_ref(run_dir))  # the first version loads before the replica takes traffic

    def reconfigure(self, user_config: dict | None) -> None:
        """Serve ``user_config``: change ``w_engagement``, ``w_value``, ``lambda_diversity``, ``top_n_serve``
        live; other keys are rejected. ``serve deploy`` of the config YAML applies a changed ``user_config`` in
        place (no restart); ``serve.run`` from Python has no code version to compare, so it rolls the replicas."""
        self.cfg = apply_rerank_user_config(self._base_cfg, user_config)

    async def rerank(self, ref: VersionRef, scored: Scored, k: int) -> Reranked:
        if scored.version != ref.version:
            raise RuntimeError(f"version mix: scores of {scored.version} for request of {ref.version}")
        c = self.cfg  # one read: a concurrent reconfigure never mixes weights within a request
        return rerank(self.parts.get(ref.version, ref.run_dir), scored, k, c.w_engagement, c.w_value,
                      c.value_scale, c.lambda_diversity, c.top_n_serve)


@dataclass(frozen=True)
class IngressVersion:
    """The ingress's view of a version: its reference and id maps."""

    ref: VersionRef
    ids: IdPart


class GraphFront(FeedbackFront, HttpFront):
    """The graph's ingress: captures the version once per request and calls the three stages' handles.

    Args:
        retrieval, ranking, reranking: handles (Serve ``DeploymentHandle`` or test fakes) with ``options``
            and ``remote``; methods ``retrieve``, ``score``, ``rerank`` and ``warm`` are used.
    """

    topology = "graph"

    def __init__(self, retrieval: Any, ranking: Any, reranking: Any, cfg: ServeConfig, run_dir: str) -> None:
        self.init_front(cfg)
        self.init_feedback()
        self.retrieval = retrieval.options(method_name="retrieve")
        self.ranking = ranking.options(method_name="score")
        self.reranking = reranking.options(method_name="rerank")
        ref = make_ref(run_dir)
        self.slot: VersionSlot[IngressVersion] = VersionSlot(IngressVersion(ref, load_ids(ref.run_dir)))
        self._prepared: dict[str, IngressVersion] = {}

    async def warm_up(self) -> None:
        """Send one known-user and one cold-start request down the graph before this replica takes traffic.

        The first call through each handle pays router set-up and the replicas' first-call costs: measured on
        the demo run, the first request took 2,670 ms (retrieval 869, ranking 1,793) and the next ones ~25 ms.
        """
        v = self.slot.get()
        for user_idx in (0, UNKNOWN):
            try:
                cand = await self.retrieval.remote(v.ref, user_idx)
                scored = await self.ranking.remote(v.ref, cand, time.time())
                await self.reranking.remote(v.ref, scored, self.cfg.k_default)
            except Exception:  # noqa: BLE001 - a cold first request is better than a replica that never starts
                logger.warning("ingress warm-up request failed (user_idx=%d)", user_idx, exc_info=True)

    @staticmethod
    async def call(handle: Any, *args: Any) -> Any:
        """``handle.remote(*args)``, once more if the replica it reached died (stage calls are idempotent)."""
        try:
            return await handle.remote(*args)
        except REPLICA_GONE:
            logger.warning("a stage replica died mid-call; retrying on another replica")
            return await handle.remote(*args)

    async def answer(self, raw_user: int, k: int, t0: float) -> dict[str, Any]:
        v = self.slot.get()  # the ONLY read of the current version for this request
        user_idx = lookup_user(v.ids, raw_user)
        cand: Candidates = await self.call(self.retrieval, v.ref, user_idx)
        t1 = time.perf_counter()
        scored: Scored = await self.call(self.ranking, v.ref, cand, time.time())
        t2 = time.perf_counter()
        out: Reranked = await self.call(self.reranking, v.ref, scored, k)
        t3 = time.perf_counter()
        if not cand.version == scored.version == out.version == v.ref.version:
            raise RuntimeError("stages answered with different model versions")
        return response_body(raw_user, v.ref.version, v.ids, cand, out, (t1 - t0) * 1e3, (t2 - t1) * 1e3,
                             (t3 - t2) * 1e3, (time.perf_counter() - t0) * 1e3)

    async def predict_click(self, raw_user: int, raw_item: int) -> tuple[float, str]:
        v = self.slot.get()
        item_idx = lookup_item(v.ids, raw_item)
        if item_idx < 0:
            raise UnknownItem(raw_item)
        cand = pair_candidates(v.ref.version, lookup_user(v.ids, raw_user), item_idx)
        scored: Scored = await self.call(self.ranking, v.ref, cand, time.time())
        return float(scored.p_click[0]), v.ref.version

    def current_version(self) -> str:
        return self.slot.get().ref.version

    def _load(self, run_dir: str, version: str) -> IngressVersion:
        ref = make_ref(run_dir)
        if ref.version != version:
            raise RuntimeError(f"run directory now holds version {ref.version}, not {version}")
        return IngressVersion(ref, load_ids(ref.run_dir))

    async def prepare(self, run_dir: str, version: str) -> None:
        if version != self.current_version() and version not in self._prepared:
            self._prepared = {version: await asyncio.to_thread(self._load, run_dir, version)}

    async def commit(self, run_dir: str, version: str) -> None:
        if version == self.current_version():
            return
        new = self._prepared.pop(version, None) or await asyncio.to_thread(self._load, run_dir, version)
        old = self.slot.swap(new)
        self._prepared.clear()
        self.metrics.version_switched(old.ref.version, new.ref.version)

    def check_health(self) -> None:
        if self.slot.get() is None:
            raise RuntimeError("ingress: no model version")


# ------------------------------------------------------------------------------------------- Serve deployments


@serve.deployment(name="Retrieval")
class Retrieval(RetrievalStage):
    """:class:`RetrievalStage`, requests batched per replica (one cache MGET and one FAISS search)."""

    async def __init__(self, cfg: ServeConfig, run_dir: str, loaders: Loaders | None = None,
                       board_name: str | None = None) -> None:
        t = time.perf_counter()
        RetrievalStage.__init__(self, cfg, run_dir, loaders)
        self.retrieve.set_max_batch_size(cfg.max_batch_size)
        self.retrieve.set_batch_wait_timeout_s(cfg.batch_wait_timeout_s)
        await self.join_board(board_name, run_dir)
        self.started(t)

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.0)
    async def retrieve(self, refs: list[VersionRef], user_idx: list[int]) -> list[Candidates]:
        return self.retrieve_many(refs, user_idx)


@serve.deployment(name="Ranking")
class Ranking(RankingStage):
    """:class:`RankingStage`, requests batched with ``@serve.batch``."""

    async def __init__(self, cfg: ServeConfig, run_dir: str, loaders: Loaders | None = None,
                       board_name: str | None = None) -> None:
        t = time.perf_counter()
        RankingStage.__init__(self, cfg, run_dir, loaders)
        self.score.set_max_batch_size(cfg.max_batch_size)
        self.score.set_batch_wait_timeout_s(cfg.batch_wait_timeout_s)
        await self.join_board(board_name, run_dir)
        self.started(t)

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.0)
    async def score(self, refs: list[VersionRef], cands: list[Candidates], timestamps: list[float]) -> list[Scored]:
        return self.score_many(refs, cands, timestamps)


@serve.deployment(name="Reranking")
class Reranking(RerankingStage):
    """:class:`RerankingStage` (live knobs through ``user_config``)."""

    async def __init__(self, cfg: ServeConfig, run_dir: str, loaders: Loaders | None = None,
                       board_name: str | None = None) -> None:
        t = time.perf_counter()
        RerankingStage.__init__(self, cfg, run_dir, loaders)
        await self.join_board(board_name, run_dir)
        self.started(t)


@serve.deployment(name="Ingress")
@serve.ingress(add_feedback_route(make_api("GraphRecSys (graph)")))
class Ingress(GraphFront):
    """HTTP API of the graph: ``GET /recommend/{user_id}?k=10``, ``GET /health``, ``GET /metrics``, ``POST /reload``,
    ``POST /feedback``."""

    async def __init__(self, retrieval: Any, ranking: Any, reranking: Any, cfg: ServeConfig, run_dir: str,
                       board_name: str | None = None) -> None:
        t = time.perf_counter()
        GraphFront.__init__(self, retrieval, ranking, reranking, cfg, run_dir)
        self.metrics = replica_metrics()  # this replica's /metrics plus Ray's cluster-wide export
        self.follower: Follower | None = None
        if board_name:
            ref = self.slot.get().ref
            self.board = board_handle(f"{serve.get_replica_context().app_name}:{board_name}", ref.run_dir,
                                      ref.version)
            self.follower = await follow(self.board, self.prepare, self.commit, ref.version)
        await self.warm_up()
        self.metrics.replica_started(time.perf_counter() - t, self.current_version())

    def __del__(self) -> None:
        if getattr(self, "follower", None) is not None:
            self.follower.stop()
