"""Typed builder of the Serve application: ``serve run serve_app.app:build_app run_dir=runs/demo``.

The same builder serves ``serve run configs/serve_app.yaml`` (args in the YAML), ``graphrec serve`` and tests.
Building only reads the :class:`ServeConfig` YAML and binds deployments; models load inside the replicas.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, Field
from ray.serve import Application

from graphrec_ray.config import load_config
from graphrec_ray.serving.config import ServeConfig
from serve_app.deployments import Ingress, Ranking, Reranking, Retrieval

DEFAULT_CONFIG = "configs/serve.yaml"


class AppArgs(BaseModel):
    """Arguments of :func:`build_app` (validated by Serve from ``serve run`` / the config YAML)."""

    run_dir: str = Field("runs/demo", description="run directory to serve (the first model version)")
    config: str | None = Field(DEFAULT_CONFIG, description="ServeConfig YAML; None = defaults")
    overrides: list[str] = Field(default_factory=list, description="ServeConfig key=value overrides")


def load_serve_config(config: str | None, overrides: list[str] | None = None) -> ServeConfig:
    """:class:`ServeConfig` from a YAML (a missing default file means defaults) plus overrides."""
    path = config if config is not None and (config != DEFAULT_CONFIG or Path(config).is_file()) else None
    return load_config(ServeConfig, path, overrides or [])


def build_graph(cfg: ServeConfig, run_dir: str | Path, ranker_loader: Callable[[Path], Any] | None = None,
                reranking_user_config: dict[str, Any] | None = None,
                ingress_user_config: dict[str, Any] | None = None) -> Application:
    """Bind Ingress(Retrieval, Ranking, Reranking) with each deployment's options from ``cfg``.

    Args:
        cfg: the serving configuration.
        run_dir: run directory of the first model version (made absolute here).
        ranker_loader: ``run_dir -> ranker``; ``None`` uses ``cfg.ranker_loader`` (``RankerBundle.load``).
        reranking_user_config: live-updatable reranking knobs (``lambda_diversity``, ``w_engagement``,
            ``w_value``, ``top_n_serve``) applied through Serve's ``user_config`` / ``reconfigure``.
        ingress_user_config: ``{"run_dir": ...}`` switches every ingress replica to that model version
            (Serve's rolling ``reconfigure``; ``POST /reload`` switches only the replica it reaches).
    """
    rd = str(Path(run_dir).resolve())
    logging_config = {"enable_access_log": cfg.access_log}
    retrieval = Retrieval.options(**cfg.retrieval.serve_options(), logging_config=logging_config).bind(cfg, rd)
    ranking = Ranking.options(**cfg.ranking.serve_options(), logging_config=logging_config).bind(
        cfg, rd, ranker_loader)
    rerank_opts = cfg.reranking.serve_options()
    if reranking_user_config:
        rerank_opts["user_config"] = dict(reranking_user_config)
    reranking = Reranking.options(**rerank_opts, logging_config=logging_config).bind(cfg, rd)
    ingress_opts = cfg.ingress.serve_options()
    if ingress_user_config:
        ingress_opts["user_config"] = dict(ingress_user_config)
    return Ingress.options(**ingress_opts, logging_config=logging_config).bind(
        retrieval, ranking, reranking, cfg, rd)


def build_app(args: AppArgs) -> Application:
    """Serve application builder (``import_path: serve_app.app:build_app``)."""
    if isinstance(args, dict):  # direct calls with a plain dict
        args = AppArgs.model_validate(args)
    return build_graph(load_serve_config(args.config, args.overrides), args.run_dir)
