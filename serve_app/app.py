"""Typed builder of the Serve application: ``serve run serve_app.app:build_app run_dir=runs/demo``.

The same builder serves ``serve run configs/serve_app.yaml`` (args in the YAML), ``graphrec serve`` and tests.
Building only reads the :class:`ServeConfig` YAML and binds deployments; models load inside the replicas.

Relative ``run_dir`` / ``config`` arguments resolve against :data:`PROJECT_ROOT` (the folder holding
``serve_app/``), never against the working directory: Serve builds an application from a config file inside a Ray
worker on the cluster, whose working directory is wherever ``ray start`` ran, so ``runs/demo`` used to name
another folder (or none) there. A run directory that does not exist is refused at build time with the resolved
path in the message, instead of failing later in every replica.

``serve build`` only accepts an already built application (ray-project/ray#37819), so the module also offers
``app``: the default application (``AppArgs()``), built on first access, not at import
(``serve build serve_app.app:app``). ``graphrec kuberay`` turns that output into the KubeRay manifest.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import uuid
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field
from ray.serve import Application

from graphrec_ray.config import load_config
from graphrec_ray.errors import ConfigError, UserError
from graphrec_ray.serving.config import ServeConfig
from serve_app.collocated import Collocated
from serve_app.deployments import Ingress, Ranking, Reranking, Retrieval
from serve_app.http_front import RERANK_KNOBS
from serve_app.loaders import loaders_from

DEFAULT_CONFIG = "configs/serve.yaml"
PROJECT_ROOT = Path(__file__).resolve().parents[1]  # relative app args resolve here, wherever the app is built
TOKEN_ENV = "GRAPHREC_RELOAD_TOKEN"  # where the reload token comes from when ServeConfig.reload_token is ""


class AppArgs(BaseModel):
    """Arguments of :func:`build_app` (validated by Serve from ``serve run`` / the config YAML).

    Unknown keys are refused: pydantic's default would drop a misspelt ``run_dri`` and serve ``runs/demo``.
    """

    model_config = ConfigDict(extra="forbid")

    run_dir: str = Field("runs/demo", description="run directory to serve (the first model version)")
    config: str | None = Field(DEFAULT_CONFIG, description="ServeConfig YAML; None = defaults")
    overrides: list[str] = Field(default_factory=list, description="ServeConfig key=value overrides")


def load_serve_config(config: str | None, overrides: list[str] | None = None) -> ServeConfig:
    """:class:`ServeConfig` from a YAML plus overrides.

    The default ``configs/serve.yaml`` is looked up in the working directory, then in :data:`PROJECT_ROOT` (so
    ``graphrec serve`` run from elsewhere keeps the project's Redis cache settings); only when neither has it do
    the defaults apply. Any other path must exist.
    """
    path: str | Path | None = config
    if config == DEFAULT_CONFIG and not Path(config).is_file():
        path = PROJECT_ROOT / DEFAULT_CONFIG if (PROJECT_ROOT / DEFAULT_CONFIG).is_file() else None
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
    loaders = loaders_from(cfg, ranker_loader)  # deployments get their loaders and cache from here, not from cfg
    if cfg.topology == "collocated":
        opts = {**cfg.collocated.serve_options(), "user_config": user_config}
        return Collocated.options(**opts, logging_config=logging_config).bind(cfg, str(rd), loaders, board)
    retrieval = Retrieval.options(**cfg.retrieval.serve_options(), logging_config=logging_config).bind(
        cfg, str(rd), loaders, board)
    ranking = Ranking.options(**cfg.ranking.serve_options(), logging_config=logging_config).bind(
        cfg, str(rd), loaders, board)
    reranking = Reranking.options(**cfg.reranking.serve_options(), user_config=user_config,
                                  logging_config=logging_config).bind(cfg, str(rd), loaders, board)
    return Ingress.options(**cfg.ingress.serve_options(), logging_config=logging_config).bind(
        retrieval, ranking, reranking, cfg, str(rd), board)


def resolve_app_path(text: str, root: Path | None = None) -> Path:
    """``text`` as an absolute path: kept when absolute, else joined to ``root`` (default :data:`PROJECT_ROOT`)."""
    p = Path(text).expanduser()
    return (p if p.is_absolute() else (root or PROJECT_ROOT) / p).resolve()


def resolve_app_args(args: AppArgs, root: Path | None = None, check: bool = True) -> tuple[Path, str | None]:
    """``(run_dir, config)`` of ``args`` as absolute paths (relative ones against ``root``, see module doc).

    ``config=None`` stays ``None`` (defaults), and so does the default ``configs/serve.yaml`` when the project
    holds no such file (an installed package). With ``check``, a ``run_dir`` that is not a directory raises.

    Raises:
        UserError: ``check`` and ``run_dir`` names no directory (the message gives the resolved path and the rule).
        ConfigError: ``config`` names a file that does not exist.
    """
    root = root or PROJECT_ROOT
    run_dir = resolve_app_path(args.run_dir, root)
    rule = ("" if Path(args.run_dir).is_absolute() else
            f" (a relative run_dir resolves against the project root {root}, not against the folder `ray start` "
            "ran in; give an absolute path to serve a run kept elsewhere)")
    if check and not run_dir.is_dir():
        raise UserError(f"run_dir '{args.run_dir}' is not a directory: {run_dir}{rule}")
    config: str | None = None
    if args.config is not None:
        path = resolve_app_path(args.config, root)
        if path.is_file():
            config = str(path)
        elif args.config != DEFAULT_CONFIG:
            raise ConfigError(f"config '{args.config}' is not a file: {path} (relative paths resolve against the "
                              f"project root {root})")
    return run_dir, config


def board_key_of(args: AppArgs) -> str:
    """Digest of the arguments: ``serve deploy`` of the same config (e.g. a changed ``user_config``) keeps the
    replicas on the board they follow."""
    return hashlib.sha256(args.model_dump_json().encode()).hexdigest()[:12]


def build_app(args: AppArgs) -> Application:
    """Serve application builder (``import_path: serve_app.app:build_app``; paths resolve as the module doc says).

    Raises:
        UserError: ``run_dir`` is not a directory, or ``config`` is not a file (shown by ``serve status``).
    """
    if isinstance(args, dict):  # direct calls with a plain dict
        args = AppArgs.model_validate(args)
    run_dir, config = resolve_app_args(args)
    return build_graph(load_serve_config(config, args.overrides), run_dir, board_key=board_key_of(args))


def __getattr__(name: str) -> Application:
    """``app``: the default application (``AppArgs()``, serving ``<project>/runs/demo``), for ``serve build``.

    Built on access (module ``__getattr__``), so importing this module still binds nothing. The run directory is
    not checked: ``serve build`` only records deployment options, and the generated config names
    :func:`build_app` with its own ``args``.
    """
    if name == "app":
        args = AppArgs()
        run_dir, config = resolve_app_args(args, check=False)
        return build_graph(load_serve_config(config, args.overrides), run_dir, board_key=board_key_of(args))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
