"""Strict check of a Ray Serve config (``serve deploy`` YAML, a RayService's ``serveConfigV2``).

Serve validates a config with pydantic models that *ignore* unknown keys, so a misspelt ``num_replica`` or
``ray_actor_option`` is dropped without a word and the deployment runs with the default. :func:`check_serve_config`
validates with :class:`ray.serve.schema.ServeDeploySchema` and then walks the document beside the schema's models,
reporting every key that no model field (or alias) names; the ``args`` of an application built by
:func:`serve_app.app.build_app` are checked against :class:`serve_app.app.AppArgs` and a reranking deployment's
``user_config`` against :data:`serve_app.http_front.RERANK_KNOBS`. Free-form mappings (``runtime_env``, other
applications' ``args``) are not looked into.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel

from graphrec_ray.errors import ConfigError

BUILDER = "serve_app.app:build_app"
RERANKING_DEPLOYMENTS = ("Recommender", "Reranking")  # the deployments whose user_config holds the knobs


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """Pydantic model classes an annotation admits (``X``, ``Optional[X]``, ``Union[dict, X]``, ``List[X]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, typing.Annotated, list, tuple):
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    return []


def unknown_keys(model: type[BaseModel], data: Any, path: str = "") -> list[str]:
    """Dotted paths of keys in ``data`` that ``model`` (recursively) has no field for.

    Args:
        model: a pydantic model class (e.g. ``ServeDeploySchema``).
        data: the parsed YAML mapping meant for it; lists of mappings are walked item by item.
        path: prefix of the reported paths.
    """
    if isinstance(data, list):
        return [k for i, item in enumerate(data) for k in unknown_keys(model, item, f"{path}[{i}]")]
    if not isinstance(data, dict):
        return []
    names = {}
    for name, field in model.model_fields.items():
        names[name] = field
        if field.alias:
            names[field.alias] = field
    out: list[str] = []
    for key, value in data.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in names:
            out.append(where)
            continue
        for sub in _models_in(names[key].annotation)[:1]:
            out += unknown_keys(sub, value, where)
    return out


def check_serve_config(doc: dict) -> None:
    """Validate ``doc`` as a Serve deploy config and refuse keys that Serve would silently drop.

    Raises:
        ConfigError: the schema rejects ``doc``, or it holds keys no field names (all listed, dotted paths),
            or a ``serve_app.app:build_app`` application has ``args`` that :class:`AppArgs` refuses, or a reranking
            deployment has ``user_config`` keys that are not reranking knobs.
    """
    from pydantic import ValidationError
    from ray.serve.schema import ServeDeploySchema

    from serve_app.app import AppArgs
    from serve_app.http_front import RERANK_KNOBS

    try:
        ServeDeploySchema.model_validate(doc)
    except ValidationError as exc:
        raise ConfigError(f"not a valid Serve config: {exc.error_count()} error(s): "
                          + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from None
    unknown = unknown_keys(ServeDeploySchema, doc)
    for i, app in enumerate(doc.get("applications") or []):
        if app.get("import_path") != BUILDER:
            continue
        unknown += [f"applications[{i}].args.{k}" for k in sorted(set(app.get("args") or {}) - set(AppArgs.model_fields))]
        for j, dep in enumerate(app.get("deployments") or []):
            if dep.get("name") in RERANKING_DEPLOYMENTS:
                extra = sorted(set(dep.get("user_config") or {}) - set(RERANK_KNOBS))
                unknown += [f"applications[{i}].deployments[{j}].user_config.{k}" for k in extra]
    if unknown:
        raise ConfigError("unknown key(s) in the Serve config (Serve would drop them silently): " + ", ".join(unknown))
