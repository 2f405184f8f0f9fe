"""The HTTP API both topologies serve: ``GET /recommend/{user_id}?k=10``, ``/health``, ``/metrics``, ``POST /reload``.

:class:`HttpFront` holds everything that is not topology-specific: input parsing (400s), the response body
(:func:`graphrec_ray.serving.pipeline.response_body`), metrics, health and the guarded reload. A topology only
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
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from graphrec_ray.errors import DataError
from graphrec_ray.serving.config import ServeConfig
from graphrec_ray.serving.metrics import ServingMetrics
from graphrec_ray.serving.pipeline import parse_k, parse_user_id
from graphrec_ray.serving.versioned import version_id
from serve_app.version_pointer import CORRUPT, Board

logger = logging.getLogger("ray.serve")

TOKEN_HEADER = "X-Reload-Token"
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


# ---------------------------------------------------------------------- the documented API (OpenAPI)

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class ErrorBody(BaseModel):
    """Every non-200 answer: what was wrong, in words (never exception texts or server paths)."""

    error: str = Field(description="what was wrong with the request")
    status: int = Field(description="the HTTP status, repeated")


class RecommendedItem(BaseModel):
    item_id: int = Field(description="raw item (KuaiRec video) id")
    p_click: float = Field(description="calibrated click probability")
    e_value: float = Field(description="expected value (watch-ratio based) if clicked")
    final_score: float = Field(description="the reranking score MMR started from")


class RecommendBody(BaseModel):
    user_id: int = Field(description="the raw user id asked for")
    model_version: str = Field(description="digest of the run directory's manifests that answered")
    cold_start: bool = Field(description="the user has no embedding: items come from the popularity prior")
    cache_hit: bool = Field(description="the user embedding came from Redis")
    items: list[RecommendedItem] = Field(description="at most k items, best first; seen items removed")
    retrieval_latency_ms: float
    ranking_latency_ms: float
    rerank_latency_ms: float
    total_latency_ms: float


class HealthBody(BaseModel):
    status: Literal["ok"]
    model_version: str
    topology: Literal["collocated", "graph"]


class ReloadRequest(BaseModel):
    run_dir: str = Field(min_length=1, description="run directory under the server's reload root (relative or "
                                                    "absolute)")


class ReloadBody(BaseModel):
    status: Literal["ok"]
    previous_version: str
    model_version: str
    replicas: int = Field(description="replicas that switched")


def _err(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


RESPONSES: dict[str, dict[int, dict[str, Any]]] = {
    "recommend": {200: {"model": RecommendBody, "description": "the recommendations"},
                  400: _err("user_id is not a 64-bit integer, or k is not an integer in [1, k_max]"),
                  500: _err("the request path failed (logged on the server)")},
    "health": {200: {"model": HealthBody, "description": "the replica serves a model version"}},
    "metrics": {200: {"description": "Prometheus text exposition of the replica that answered"}},
    "reload": {200: {"model": ReloadBody, "description": "every replica serves the new version"},
               400: _err("the body is not {\"run_dir\": \"...\"} or names no servable run under the reload root "
                         "(one answer, whether or not the path exists)"),
               401: _err("no X-Reload-Token header"),
               403: _err("wrong token, or reload disabled (no token configured)"),
               422: _err("a replica could not load the version in time; every replica still serves the old one"),
               503: _err("this replica cannot coordinate a reload")},
}
SECURITY = {"ReloadToken": {"type": "apiKey", "in": "header", "name": TOKEN_HEADER,
                            "description": "ServeConfig.reload_token / env GRAPHREC_RELOAD_TOKEN"}}


def _serving_config() -> ServeConfig:
    """The answering replica's config (``k_max`` etc.); the defaults outside a Serve replica."""
    try:
        from ray import serve

        return serve.get_replica_context().servable_object.cfg
    except Exception:  # noqa: BLE001 - not in a replica (docs, tests): document the defaults
        return ServeConfig()


def openapi_document(api: FastAPI, cfg: ServeConfig) -> dict[str, Any]:
    """``api``'s OpenAPI document as the handlers behave under ``cfg``.

    FastAPI documents what its own validation would do; the handlers parse ``user_id`` and ``k`` themselves (to
    answer 400 with a message) and a validation error is turned into a 400 too. So: ``user_id`` / ``k`` are
    documented as the integers they must be (``k`` in ``[1, cfg.k_max]``), FastAPI's 422 "Validation Error"
    (never sent) becomes the 400 that is, and ``/reload`` gets its body and token scheme.
    """
    doc = get_openapi(title=api.title, version=api.version, description=api.description, routes=api.routes)
    for ops in doc.get("paths", {}).values():
        for op in ops.values():
            responses = op.setdefault("responses", {})
            auto = responses.get("422", {})
            if "HTTPValidationError" in str(auto):
                del responses["422"]
                responses.setdefault("400", {"description": "invalid request (the message names the field)",
                                             "content": {"application/json": {"schema": {
                                                 "$ref": "#/components/schemas/ErrorBody"}}}})
            params = [p for p in op.get("parameters", []) if p.get("name") != "self"]
            for p in params:
                if p["name"] == "user_id":
                    p["schema"] = {"type": "integer", "format": "int64", "minimum": INT64_MIN, "maximum": INT64_MAX,
                                   "title": "User Id", "description": "raw user id; unknown users get cold-start items"}
                elif p["name"] == "k":
                    p["schema"] = {"type": "integer", "minimum": 1, "maximum": cfg.k_max, "default": cfg.k_default,
                                   "title": "K", "description": "number of items"}
            if "parameters" in op:
                op["parameters"] = params
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        if name not in str(doc["paths"]):
            schemas.pop(name, None)
    schemas.setdefault("ErrorBody", ErrorBody.model_json_schema())
    doc["components"]["securitySchemes"] = SECURITY
    return doc


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
        cfg = _serving_config()
        key = (cfg.k_max, cfg.k_default)
        if key not in cache:
            cache[key] = openapi_document(api, cfg)
        return cache[key]

    api.openapi = openapi  # type: ignore[method-assign]
    return api
