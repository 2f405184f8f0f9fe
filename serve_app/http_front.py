"""The HTTP API both topologies serve: ``GET /recommend/{user_id}?k=10``, ``/health``, ``/metrics``, ``POST /reload``.

:class:`HttpFront` holds everything that is not topology-specific: input parsing (400s), the response body
(:func:`graphrec_ray.serving.request_path.response_body`), metrics, health and the guarded reload. A topology only
says how one request is answered (:meth:`HttpFront.answer`) and how a version is loaded and switched
(:meth:`HttpFront.prepare`, :meth:`HttpFront.commit`). :func:`make_api` makes one FastAPI app per deployment
class with the same routes (Serve's ingress rewrites an app's routes for the class it wraps).

``/reload`` is closed: it needs the token from :attr:`ServeConfig.reload_token` in the ``X-Reload-Token`` header
(401 without it, 403 when wrong or when no token is configured) and only loads run directories under
:attr:`ServeConfig.reload_root`; any other path gets the same 400, whether or not it exists. Error messages
never carry exception texts or server paths.
"""

from __future__ import annotations

import hmac
import logging
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from graphrec_ray.errors import DataError
from graphrec_ray.serving.config import ServeConfig
from graphrec_ray.serving.telemetry import ServingMetrics
from graphrec_ray.serving.request_path import parse_k, parse_user_id
from graphrec_ray.serving.versions import version_id
from serve_app.openapi import RESPONSES, TOKEN_HEADER, ReloadRequest, openapi_document, serving_config
from serve_app.version_pointer import CORRUPT, Board

logger = logging.getLogger("ray.serve")

RERANK_KNOBS = ("w_engagement", "w_value", "lambda_diversity", "top_n_serve")  # live user_config keys
BAD_RUN_DIR = "run_dir must name a servable run directory under the server's reload root"


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": message, "status": status})


def apply_rerank_user_config(cfg: ServeConfig, user_config: dict | None) -> ServeConfig:
    """``cfg`` with Serve ``user_config`` reranking knobs applied (:data:`RERANK_KNOBS`; other keys rejected)."""
    import dataclasses

    user_config = user_config or {}
    unknown = sorted(set(user_config) - set(RERANK_KNOBS))
    if unknown:
        raise ValueError(f"user_config: unknown key '{unknown[0]}' (allowed: {sorted(RERANK_KNOBS)})")
    return dataclasses.replace(cfg, **user_config)  # __post_init__ validates the values


def resolve_run_dir(root: str | Path, text: str) -> Path | None:
    """``text`` (absolute, or relative to ``root``) resolved, if it lies strictly under ``root``; else ``None``."""
    base = Path(root).resolve()
    p = Path(text)
    p = (p if p.is_absolute() else base / p).resolve()
    return p if base in p.parents else None


class HttpFront:
    """Endpoint logic shared by the graph's Ingress and the collocated Recommender (plain Python).

    Subclasses set :attr:`topology` and implement :meth:`answer`, :meth:`current_version`, :meth:`prepare` and
    :meth:`commit`; they call :meth:`init_front` in their constructor and attach a board with :meth:`follow`.
    """

    topology = "?"

    def init_front(self, cfg: ServeConfig) -> None:
        self.cfg = cfg
        self.metrics = ServingMetrics()
        self.board: Board | None = None

    # ------------------------------------------------------------------ topology hooks

    async def answer(self, raw_user: int, k: int, t0: float) -> dict[str, Any]:
        """The ``/recommend`` body for one parsed request (``t0``: ``perf_counter`` at arrival)."""
        raise NotImplementedError

    def current_version(self) -> str:
        raise NotImplementedError

    async def prepare(self, run_dir: str, version: str) -> None:
        """Load ``version`` beside the current one (nothing switches yet)."""
        raise NotImplementedError

    async def commit(self, run_dir: str, version: str) -> None:
        """Make ``version`` current (one reference swap); loads it first if it was never prepared."""
        raise NotImplementedError

    # ------------------------------------------------------------------ endpoints

    async def recommend(self, user_id: str, k: str | None = None) -> Any:
        t0 = time.perf_counter()
        try:
            raw_user = parse_user_id(user_id)
            kk = parse_k(k, self.cfg.k_default, self.cfg.k_max)
        except ValueError as exc:
            self.metrics.count_request("recommend", 400)
            return error(400, str(exc))
        try:
            body = await self.answer(raw_user, kk, t0)
        except Exception:  # noqa: BLE001 - a server fault: log it, answer 500 without internals
            logger.exception("recommend failed for user %s", user_id)
            self.metrics.count_request("recommend", 500)
            return error(500, "internal error while recommending")
        self.metrics.observe_recommend(body["retrieval_latency_ms"], body["ranking_latency_ms"],
                                       body["rerank_latency_ms"], body["total_latency_ms"], body["cache_hit"],
                                       body["cold_start"])
        self.metrics.count_request("recommend", 200)
        return body

    async def health(self) -> Any:
        self.metrics.count_request("health", 200)
        return {"status": "ok", "model_version": self.current_version(), "topology": self.topology}

    async def metrics_text(self) -> Response:
        self.metrics.count_request("metrics", 200)
        return Response(content=self.metrics.render(), media_type=self.metrics.content_type)

    async def reload(self, request: Request) -> Any:
        """Body ``{"run_dir": "<run directory under the reload root>"}``; header ``X-Reload-Token``.

        Every replica of the application loads the version beside the current one, then all switch; answers 200
        once they serve it, 422 (still serving the old version) when a replica could not load it.
        """
        denied = self._check_token(request.headers.get(TOKEN_HEADER))
        if denied is not None:
            self.metrics.reloads.labels(status="denied").inc()
            return denied
        try:
            body = await request.json()
            text = body["run_dir"]
            if not isinstance(text, str) or not text:
                raise ValueError
        except Exception:  # noqa: BLE001 - any malformed body is the client's mistake
            self.metrics.reloads.labels(status="error").inc()
            return error(400, 'body must be JSON {"run_dir": "<run directory under the reload root>"}')
        try:
            path = resolve_run_dir(self.cfg.reload_root, text)
            if path is None:
                raise DataError("outside the root")
            vid = version_id(path)
        except (DataError, OSError, ValueError):  # one answer whether or not the path exists (no probing the
            # disk); ValueError: a NUL byte in the path (it answered 500)
            self.metrics.reloads.labels(status="error").inc()
            return error(400, BAD_RUN_DIR)
        if self.board is None:
            return error(503, "reload is not available on this replica")
        out = await self.board.propose(str(path), vid, self.cfg.reload_timeout_s)
        if not out["ok"]:
            self.metrics.reloads.labels(status="error").inc()
            what = "could not be loaded by" if out["reason"] == "load_failed" else "timed out on"
            why = f" ({CORRUPT})" if CORRUPT in out.get("errors", ()) else ""
            return error(422, f"version {vid} {what} {max(1, out['failed'])} replica(s){why}; every replica still "
                              f"serves {out['previous_version']}")
        self.metrics.reloads.labels(status="ok").inc()
        return {"status": "ok", "previous_version": out["previous_version"], "model_version": vid,
                "replicas": out["replicas"]}

    def _check_token(self, given: str | None) -> JSONResponse | None:
        if not self.cfg.reload_token:
            return error(403, "reload is disabled (no reload token configured)")
        if not given:
            return error(401, f"reload needs the {TOKEN_HEADER} header")
        if not hmac.compare_digest(given.encode(), self.cfg.reload_token.encode()):
            return error(403, "wrong reload token")
        return None


def make_api(title: str) -> FastAPI:
    """A FastAPI app with :class:`HttpFront`'s routes (one app per deployment class).

    Its ``/openapi.json`` is :func:`openapi_document` under the answering replica's config.
    """
    api = FastAPI(title=title, version="1", description="Recommendations: retrieval → ranking → reranking on Ray "
                  "Serve. Every error is JSON {\"error\": \"...\", \"status\": N}.")

    @api.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in exc.errors()]
        return error(400, "invalid request: " + "; ".join(parts))

    @api.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """FastAPI's own 400 (unparsable body), 404 and 405 in the same ``{"error", "status"}`` shape."""
        response = error(exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})  # e.g. 405's Allow
        return response

    api.get("/recommend/{user_id}", summary="Top-k items for a user", responses=RESPONSES["recommend"])(
        HttpFront.recommend)
    api.get("/health", summary="Liveness and the served model version", responses=RESPONSES["health"])(
        HttpFront.health)
    api.get("/metrics", summary="Prometheus metrics of this replica", response_class=PlainTextResponse,
            responses=RESPONSES["metrics"])(HttpFront.metrics_text)
    api.post("/reload", summary="Load a new model version on every replica", responses=RESPONSES["reload"],
             openapi_extra={"security": [{"ReloadToken": []}],
                            "requestBody": {"required": True, "content": {"application/json": {
                                "schema": ReloadRequest.model_json_schema()}}}})(HttpFront.reload)
    cache: dict[tuple[int, int], dict[str, Any]] = {}

    def openapi() -> dict[str, Any]:
        cfg = serving_config()
        key = (cfg.k_max, cfg.k_default)
        if key not in cache:
            cache[key] = openapi_document(api, cfg)
        return cache[key]

    api.openapi = openapi  # type: ignore[method-assign]
    return api
