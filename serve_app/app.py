"""Typed builder of the Serve application: ``serve run serve_app.app:build_app run_dir=runs/demo``.

The same builder serves ``serve run configs/serve_app.yaml`` (args in the YAML), ``graphrec serve`` and tests.
Building only reads the :class:`ServeConfig` YAML and binds deployments; models load inside the replicas.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import uuid
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, Field
from ray.serve import Application

from graphrec_ray.config import load_config
from graphrec_ray.serving.config import ServeConfig
from serve_app.collocated import Collocated
from serve_app.deployments import Ingress, Ranking, Reranking, Retrieval
from serve_app.http_front import RERANK_KNOBS

DEFAULT_CONFIG = "configs/serve.yaml"
TOKEN_ENV = "GRAPHREC_RELOAD_TOKEN"  # where the reload token comes from when ServeConfig.reload_token is ""


class AppArgs(BaseModel):
    """Arguments of :func:`build_app` (validated by Serve from ``serve run`` / the config YAML)."""

    run_dir: str = Field("runs/demo", description="run directory to serve (the first model version)")
    config: str | None = Field(DEFAULT_CONFIG, description="ServeConfig YAML; None = defaults")
    overrides: list[str] = Field(default_factory=list, description="ServeConfig key=value overrides")


def load_serve_config(config: str | None, overrides: list[str] | None = None) -> ServeConfig:
    """:class:`ServeConfig` from a YAML (a missing default file means defaults) plus overrides."""
    path = config if config is not None and (config != DEFAULT_CONFIG or Path(config).is_file()) else None
    return load_config(ServeConfig, path, overrides or [])


def resolve_reload(cfg: ServeConfig, run_dir: Path) -> ServeConfig:
    """``cfg`` with the reload token (``""`` → env ``GRAPHREC_RELOAD_TOKEN``) and root (``""`` → ``run_dir``'s
    parent) filled in, both resolved where the application is built."""
    token = cfg.reload_token or os.environ.get(TOKEN_ENV, "")
    root = str(Path(cfg.reload_root).resolve()) if cfg.reload_root else str(run_dir.parent)
    return dataclasses.replace(cfg, reload_token=token, reload_root=root)


def rerank_user_config(cfg: ServeConfig) -> dict[str, Any]:
    """The live reranking knobs of ``cfg`` as Serve ``user_config`` (``serve deploy`` changes them in place)."""
    return {k: getattr(cfg, k) for k in RERANK_KNOBS}


def build_graph(cfg: ServeConfig, run_dir: str | Path, ranker_loader: Callable[[Path], Any] | None = None,
                reranking_user_config: dict[str, Any] | None = None, board_key: str | None = None) -> Application:
    """The application of ``cfg.topology`` with every deployment's options from ``cfg`` (the one source).

    * ``collocated``: ``Recommender`` (FastAPI ingress + retrieval → ranking → reranking in-process), options
      from ``cfg.collocated``;
    * ``graph``: ``Ingress(Retrieval, Ranking, Reranking)``, options from ``cfg.ingress``/``retrieval``/...

    Args:
        cfg: the serving configuration.
        run_dir: run directory of the first model version (made absolute here).
        ranker_loader: ``run_dir -> ranker``; ``None`` uses ``cfg.ranker_loader`` (``RankerBundle.load``).
        reranking_user_config: live reranking knobs (``lambda_diversity``, ``w_engagement``, ``w_value``,
            ``top_n_serve``) over those of ``cfg``, applied through Serve's ``user_config`` / ``reconfigure`` of the
            deployment that reranks (``Recommender`` or ``Reranking``).
        board_key: names the application's version board (cluster-wide ``/reload``); ``None`` = a fresh one, so
            each ``serve.run`` starts from ``run_dir``. Replicas add the application name.
    """
    rd = Path(run_dir).resolve()
    cfg = resolve_reload(cfg, rd)
    board = board_key or uuid.uuid4().hex[:12]
    logging_config = {"enable_access_log": cfg.access_log}
    user_config = {**rerank_user_config(cfg), **(reranking_user_config or {})}
    if cfg.topology == "collocated":
        opts = {**cfg.collocated.serve_options(), "user_config": user_config}
        return Collocated.options(**opts, logging_config=logging_config).bind(cfg, str(rd), ranker_loader, board)
    retrieval = Retrieval.options(**cfg.retrieval.serve_options(), logging_config=logging_config).bind(
        cfg, str(rd), board)
    ranking = Ranking.options(**cfg.ranking.serve_options(), logging_config=logging_config).bind(
        cfg, str(rd), ranker_loader, board)
    reranking = Reranking.options(**cfg.reranking.serve_options(), user_config=user_config,
                                  logging_config=logging_config).bind(cfg, str(rd), board)
    return Ingress.options(**cfg.ingress.serve_options(), logging_config=logging_config).bind(
        retrieval, ranking, reranking, cfg, str(rd), board)


def build_app(args: AppArgs) -> Application:
    """Serve application builder (``import_path: serve_app.app:build_app``).

    The board key is a digest of the arguments, so ``serve deploy`` of the same config (e.g. a changed
    ``user_config``) keeps the replicas on the board they follow.
    """
    if isinstance(args, dict):  # direct calls with a plain dict
        args = AppArgs.model_validate(args)
    key = hashlib.sha256(args.model_dump_json().encode()).hexdigest()[:12]
    return build_graph(load_serve_config(args.config, args.overrides), args.run_dir, board_key=key)
