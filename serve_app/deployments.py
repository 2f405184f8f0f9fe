"""Ray Serve deployments: FastAPI ingress → Retrieval → Ranking (batched) → Reranking.

Each deployment wraps the plain functions of :mod:`graphrec_ray.serving.pipeline` and keeps its own part of each
model version in a :class:`~graphrec_ray.serving.versioned.PartCache`. The ingress captures the current version
(one reference, :class:`~graphrec_ray.serving.versioned.VersionSlot`) once per request and passes its
:class:`VersionRef` to every stage, so a request never mixes versions, and a reload only swaps that reference
after the new version has loaded beside the old one. Deployments receive their config, run directory and ranker
loader as constructor arguments (tests hand in fakes); nothing is loaded at import time.
"""


import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from ray import serve
from ray.serve.handle import DeploymentHandle

from graphrec_ray.errors import UserError
from graphrec_ray.ids import UNKNOWN
from graphrec_ray.ranking.context import RequestContext
from graphrec_ray.serving.cache import EmbeddingCache
from graphrec_ray.serving.config import ServeConfig
from graphrec_ray.serving.metrics import ServingMetrics
from graphrec_ray.serving.pipeline import (
    Candidates, Reranked, Scored, lookup_user, parse_k, parse_user_id, rank, rerank, response_body,
    retrieve_batch,
)
from graphrec_ray.serving.versioned import (
    IdPart, PartCache, VersionSlot, load_ids, load_ranking_part, load_rerank_part, load_retrieval_part,
    resolve_loader, version_id,
)

logger = logging.getLogger("ray.serve")


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
    """What Retrieval, Ranking and Reranking share: a cache of loaded version parts (``self.parts``)."""

    stage = "stage"  # name used in health errors
    parts: PartCache

    def warm(self, ref: VersionRef) -> str:
        """Load ``ref``'s part now (reload path); returns the version id."""
        self.parts.get(ref.version, ref.run_dir)
        return ref.version

    def check_health(self) -> None:
        if not self.parts.loaded():
            raise RuntimeError(f"{self.stage}: no model version loaded")


@serve.deployment
class Retrieval(_Stage):
    """User embedding (Redis cache, fail-open), FAISS candidates, seen-item removal; batched per replica."""

    stage = "retrieval"

    def __init__(self, cfg: ServeConfig, run_dir: str) -> None:
        import faiss

        faiss.omp_set_num_threads(cfg.faiss_threads)
        self.cfg = cfg
        self.parts = PartCache(lambda d: load_retrieval_part(d, cfg.seen_splits, cfg.cold_start_pool),
                               cfg.max_loaded_versions)
        self.cache = EmbeddingCache.from_config(cfg.cache)
        self.warm(make_ref(run_dir))  # the first version loads before the replica takes traffic
        self.retrieve.set_max_batch_size(cfg.max_batch_size)
        self.retrieve.set_batch_wait_timeout_s(cfg.batch_wait_timeout_s)

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.0)
    async def retrieve(self, refs: list[VersionRef], user_idx: list[int]) -> list[Candidates]:
        """Candidates for a batch of ``(version, user_idx)`` requests (grouped by version)."""
        out: list[Candidates | None] = [None] * len(refs)
        for vid in dict.fromkeys(r.version for r in refs):
            rows = [i for i, r in enumerate(refs) if r.version == vid]
            part = self.parts.get(vid, refs[rows[0]].run_dir)
            cands = retrieve_batch(part, vid, [user_idx[i] for i in rows], self.cache, self.cfg.k_candidates)
            for i, c in zip(rows, cands):
                out[i] = c
        return out  # type: ignore[return-value]

    def breaker_state(self) -> str:
        return self.cache.breaker.state


@serve.deployment
class Ranking(_Stage):
    """Calibrated ``p_click`` and ``e_value`` from the ranker (MMoE + Platt); requests batched with ``@serve.batch``."""

    stage = "ranking"

    def __init__(self, cfg: ServeConfig, run_dir: str, ranker_loader: Callable[[Path], Any] | None = None) -> None:
        loader = ranker_loader or resolve_loader(cfg.ranker_loader)
        self.parts = PartCache(lambda d: load_ranking_part(d, loader, cfg.prior_strength), cfg.max_loaded_versions)
        self.warm(make_ref(run_dir))  # the first version loads before the replica takes traffic
        self.score.set_max_batch_size(cfg.max_batch_size)
        self.score.set_batch_wait_timeout_s(cfg.batch_wait_timeout_s)

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.0)
    async def score(self, refs: list[VersionRef], cands: list[Candidates], timestamps: list[float]) -> list[Scored]:
        """Score each request's candidates with the ranker of that request's version."""
        out = []
        for ref, cand, ts in zip(refs, cands, timestamps):
            if cand.version != ref.version:
                raise RuntimeError(f"version mix: candidates of {cand.version} for request of {ref.version}")
            out.append(rank(self.parts.get(ref.version, ref.run_dir), cand, RequestContext(timestamp=ts)))
        return out


@serve.deployment
class Reranking(_Stage):
    """Scalarisation ``w_engagement * p_click + w_value * e_value_normalised`` and MMR diversity."""

    stage = "reranking"

    def __init__(self, cfg: ServeConfig, run_dir: str) -> None:
        self.cfg = cfg
        self.parts = PartCache(load_rerank_part, cfg.max_loaded_versions)
        self.warm(make_ref(run_dir))  # the first version loads before the replica takes traffic

    def reconfigure(self, user_config: dict) -> None:
        """Serve ``user_config``: change ``w_engagement``, ``w_value``, ``lambda_diversity``, ``top_n_serve``
        live; other keys are rejected. ``serve deploy`` of the config YAML applies a changed ``user_config`` in
        place (no restart); ``serve.run`` from Python has no code version to compare, so it rolls the replicas."""
        allowed = {"w_engagement", "w_value", "lambda_diversity", "top_n_serve"}
        unknown = sorted(set(user_config) - allowed)
        if unknown:
            raise ValueError(f"reranking user_config: unknown key '{unknown[0]}' (allowed: {sorted(allowed)})")
        self.cfg = dataclasses.replace(self.cfg, **user_config)  # __post_init__ validates the values

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


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": message, "status": status})


api = FastAPI(title="GraphRecSys", description="Recommendations: retrieval → ranking → reranking on Ray Serve")


@api.exception_handler(RequestValidationError)
async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    parts = [f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in exc.errors()]
    return _error(400, "invalid request: " + "; ".join(parts))


@serve.deployment
@serve.ingress(api)
class Ingress:
    """HTTP API: ``GET /recommend/{user_id}?k=10``, ``GET /health``, ``GET /metrics``, ``POST /reload``."""

    async def __init__(self, retrieval: DeploymentHandle, ranking: DeploymentHandle, reranking: DeploymentHandle,
                       cfg: ServeConfig, run_dir: str) -> None:
        self.retrieval = retrieval.options(method_name="retrieve")
        self.ranking = ranking.options(method_name="score")
        self.reranking = reranking.options(method_name="rerank")
        self._warm_handles = [retrieval.options(method_name="warm"), ranking.options(method_name="warm"),
                              reranking.options(method_name="warm")]
        self.cfg = cfg
        ref = make_ref(run_dir)
        self.slot: VersionSlot[IngressVersion] = VersionSlot(IngressVersion(ref, load_ids(ref.run_dir)))
        self.metrics = ServingMetrics()
        self._reload_lock = asyncio.Lock()
        await self._warm_up()

    async def _warm_up(self) -> None:
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

    @api.get("/recommend/{user_id}")
    async def recommend(self, user_id: str, k: str | None = None) -> Any:
        t0 = time.perf_counter()
        try:
            raw_user = parse_user_id(user_id)
            kk = parse_k(k, self.cfg.k_default, self.cfg.k_max)
        except ValueError as exc:
            self.metrics.count_request("recommend", 400)
            return _error(400, str(exc))
        v = self.slot.get()  # the ONLY read of the current version for this request
        try:
            user_idx = lookup_user(v.ids, raw_user)
            cand: Candidates = await self.retrieval.remote(v.ref, user_idx)
            t1 = time.perf_counter()
            scored: Scored = await self.ranking.remote(v.ref, cand, time.time())
            t2 = time.perf_counter()
            out: Reranked = await self.reranking.remote(v.ref, scored, kk)
            t3 = time.perf_counter()
            if not cand.version == scored.version == out.version == v.ref.version:
                raise RuntimeError("stages answered with different model versions")
            total = (time.perf_counter() - t0) * 1e3
            body = response_body(raw_user, v.ref.version, v.ids, cand, out, (t1 - t0) * 1e3,
                                 (t2 - t1) * 1e3, (t3 - t2) * 1e3, total)
        except Exception:  # noqa: BLE001 - a server fault: log it, answer 500 without internals
            logger.exception("recommend failed for user %s", user_id)
            self.metrics.count_request("recommend", 500)
            return _error(500, "internal error while recommending")
        self.metrics.observe_recommend(body["retrieval_latency_ms"], body["ranking_latency_ms"],
                                       body["rerank_latency_ms"], total, cand.cache_hit, cand.cold_start)
        self.metrics.count_request("recommend", 200)
        return body

    @api.get("/health")
    async def health(self) -> Any:
        v = self.slot.get()
        self.metrics.count_request("health", 200)
        return {"status": "ok", "model_version": v.ref.version, "run_dir": v.ref.run_dir}

    @api.get("/metrics")
    async def metrics_text(self) -> Response:
        self.metrics.count_request("metrics", 200)
        return Response(content=self.metrics.render(), media_type=self.metrics.content_type)

    @api.post("/reload")
    async def reload(self, request: Request) -> Any:
        """Body ``{"run_dir": "..."}``: load that version beside the current one, then switch atomically."""
        try:
            body = await request.json()
            run_dir = body["run_dir"]
            if not isinstance(run_dir, str) or not run_dir:
                raise ValueError
        except Exception:  # noqa: BLE001 - any malformed body is the client's mistake
            self.metrics.reloads.labels(status="error").inc()
            return _error(400, 'body must be JSON {"run_dir": "<path of a run directory>"}')
        status, out = await self._switch(run_dir)
        return out if status == 200 else _error(status, out["error"])

    async def _switch(self, run_dir: str) -> tuple[int, dict[str, Any]]:
        """Load ``run_dir`` in every stage beside the current version, then swap the one reference."""
        async with self._reload_lock:
            old = self.slot.get()
            try:
                if not Path(run_dir).is_dir():
                    raise UserError(f"run_dir not found: {run_dir}")
                ref = make_ref(run_dir)
                new = IngressVersion(ref, load_ids(ref.run_dir))
            except UserError as exc:
                self.metrics.reloads.labels(status="error").inc()
                return 400, {"error": str(exc)}
            try:
                await asyncio.gather(*(h.remote(ref) for h in self._warm_handles))
            except Exception as exc:  # noqa: BLE001 - the new version failed to load in a stage: keep the old
                logger.exception("reload of %s failed", run_dir)
                self.metrics.reloads.labels(status="error").inc()
                return 422, {"error": f"version in {run_dir} failed to load; still serving "
                                      f"{old.ref.version}: {type(exc).__name__}"}
            self.slot.swap(new)
        self.metrics.reloads.labels(status="ok").inc()
        return 200, {"status": "ok", "previous_version": old.ref.version, "model_version": ref.version}

    async def reconfigure(self, user_config: dict | None) -> None:
        """Serve ``user_config`` ``{"run_dir": ...}``: EVERY ingress replica switches (Serve rolls the update),
        with the same load-beside-then-swap as ``/reload``; use it when ``ingress.num_replicas > 1``."""
        user_config = user_config or {}
        unknown = sorted(set(user_config) - {"run_dir"})
        if unknown:
            raise ValueError(f"ingress user_config: unknown key '{unknown[0]}' (allowed: ['run_dir'])")
        run_dir = user_config.get("run_dir")
        if not run_dir or make_ref(run_dir).version == self.slot.get().ref.version:
            return
        status, out = await self._switch(str(run_dir))
        if status != 200:
            raise RuntimeError(out["error"])

    def check_health(self) -> None:
        if self.slot.get() is None:
            raise RuntimeError("ingress: no model version")
