"""The documented API: response models, documented statuses and the OpenAPI document of :func:`make_api`'s app.

FastAPI documents what its own validation would do; the handlers of :class:`serve_app.http_front.HttpFront` parse
``user_id`` and ``k`` themselves (a 400 with a message) and turn validation errors into 400s too, and ``/reload``
reads its body and token by hand. :func:`openapi_document` states what they actually answer; the models here only
document (handlers return plain dicts, never validated against them). ``tests/unit/serving/test_openapi.py`` holds
the two together with a bounded schemathesis run.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from graphrec_ray.serving.config import ServeConfig

TOKEN_HEADER = "X-Reload-Token"

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


def serving_config() -> ServeConfig:
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
