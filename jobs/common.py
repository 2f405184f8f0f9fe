"""Shared plumbing for job entry points: arguments, Ray start-up, MLflow runs.

Every job accepts ``--config FILE`` (a stage YAML), ``--run-dir DIR`` and trailing
``key=value`` overrides, so the same job runs from ``graphrec <cmd>``, from
``python -m jobs.<name>`` and from ``ray job submit --working-dir . -- python -m jobs.<name> ...``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path
from typing import Any, Iterator, TypeVar

from graphrec_ray.config import config_hash, load_config, to_dict
from graphrec_ray.errors import UserError

T = TypeVar("T")


def make_parser(prog: str, description: str, default_config: str | None) -> argparse.ArgumentParser:
    """Parser with the common ``--config``, ``--run-dir``, ``--ray-address`` and overrides."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--config", default=default_config, help=f"stage YAML (default: {default_config})")
    p.add_argument("--run-dir", default="runs/demo", help="run directory shared by all stages (default: runs/demo)")
    p.add_argument("--ray-address", default=None,
                   help="Ray cluster address; default: the job's cluster under `ray job submit`, else a local one")
    p.add_argument("--verbose", action=_Verbose, nargs=0,
                   help="stream Ray's worker and actor logs to the terminal (default: kept in Ray's log folder)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="override config fields, e.g. epochs=5")
    return p


class _Verbose(argparse.Action):
    """``--verbose``: sets ``GRAPHREC_VERBOSE=1`` for this process (read by :func:`init_ray`)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        os.environ["GRAPHREC_VERBOSE"] = "1"
        setattr(namespace, self.dest, True)


def load_stage_config(cls: type[T], args: argparse.Namespace) -> T:
    """Load ``cls`` from ``args.config`` (when the file exists or was named) plus overrides."""
    path = args.config
    if path is not None and not Path(path).exists():
        raise UserError(f"config file not found: {path}")
    return load_config(cls, path, list(args.overrides))


#: Environment for a local Ray cluster this process starts (inherited by the raylet and every worker).
#: Ray Train V2's controller polls workers every RAY_TRAIN_HEALTH_CHECK_INTERVAL_S (default 2 s), and every
#: ``ray.train.report`` waits for that poll: measured here, 6 reports with 2 workers took 24 s at 2 s and 11.5 s
#: at 0.25 s (the demo trains ~75 short epochs). On an existing cluster, set it when starting the cluster.
RAY_ENV_DEFAULTS = {"RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.25", "RAY_USAGE_STATS_ENABLED": "0"}


def apply_ray_env_defaults() -> None:
    """Set :data:`RAY_ENV_DEFAULTS` where the user has not; call before a local ``ray.init``."""
    for key, value in RAY_ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)


def verbose_logs() -> bool:
    """Whether Ray's own logs should reach the terminal (``GRAPHREC_VERBOSE=1``, set by ``--verbose``)."""
    return os.environ.get("GRAPHREC_VERBOSE", "") not in ("", "0")


def cluster_address(address: str | None = None) -> str | None:
    """The cluster :func:`init_ray` joins: ``address``, else the job's ``RAY_ADDRESS``; None means it starts a private
    local cluster (which ends with this process)."""
    return address or os.environ.get("RAY_ADDRESS") or None


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Connect to Ray once: the given address, the job's cluster (``RAY_ADDRESS``), or a new private local one.

    Idempotent. A local cluster gets no dashboard unless ``GRAPHREC_DASHBOARD=1``
    (it costs a CPU-second and memory on a 2-core machine). The terminal shows the jobs' own progress and
    summaries, not Ray's internals: worker and actor logs stay in Ray's log folder
    (``/tmp/ray/session_latest/logs``) unless ``GRAPHREC_VERBOSE=1`` (``--verbose``) streams them here.
    """
    import logging

    import ray

    if ray.is_initialized():
        return
    verbose = verbose_logs()
    kwargs: dict[str, Any] = {"log_to_driver": verbose, "logging_level": logging.INFO if verbose else logging.WARNING}
    if not verbose:
        import ray.data  # noqa: F401 - configures its logger on import; quieten it afterwards

        for name in ("ray.data", "ray.train", "ray.tune", "ray.serve"):
            logging.getLogger(name).setLevel(logging.WARNING)
        # Ray 2.59+ warns on every local start that token auth is on (it stays on; the README says so). Setting
        # RAY_AUTH_MODE=token here instead is not the same: the driver has read the mode already and the cluster
        # then refuses it.
        logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    addr = cluster_address(address)
    if addr:
        kwargs["address"] = addr
    else:
        # "local" always starts a private cluster: a bare ray.init() would join the newest `ray start`
        # cluster on this machine (someone else's), which a job must never stumble into.
        kwargs["address"] = "local"
        apply_ray_env_defaults()
        kwargs["include_dashboard"] = os.environ.get("GRAPHREC_DASHBOARD") == "1"
        if num_cpus is not None:
            kwargs["num_cpus"] = num_cpus
    ray.init(**kwargs)


def in_ray_job_tempdir(path: str | Path) -> bool:
    """True when ``path`` resolves inside Ray's temporary package folder (the working directory of a
    ``ray job submit --working-dir`` job): anything written there is lost with the job."""
    return "runtime_resources" in Path(path).resolve().parts


def outputs_copy_dir(arg: str | None) -> Path | None:
    """The folder a job copies its headline files to (``outputs/`` by default), or None: not asked for, or a
    relative folder that would land in Ray's temporary package folder under ``ray job submit`` (the run
    directory, which the job is given as an absolute path, keeps the files; say so once)."""
    if not arg:
        return None
    if in_ray_job_tempdir(arg):
        print(f"note: not copying to {arg}/: it resolves inside Ray's temporary job folder "
              f"({Path(arg).resolve()}); the run directory holds the files (pass an absolute --out-dir to copy)",
              flush=True)
        return None
    return Path(arg)


#: set by :func:`pipeline_run` while a pipeline runs: every stage's MLflow run becomes its child
PARENT_RUN_ENV = "GRAPHREC_MLFLOW_PARENT_RUN"


def _set_tracking_uri() -> None:
    """``MLFLOW_TRACKING_URI`` when set; else an absolute local SQLite store ``./mlruns/mlflow.db``.

    Under ``ray job submit`` the working directory is Ray's temporary package folder, so a relative default would
    put runs and artifacts there and lose them with the job: cluster jobs pass an absolute
    ``MLFLOW_TRACKING_URI`` (``--runtime-env-json '{"env_vars": {"MLFLOW_TRACKING_URI": ...}}'``), and a job
    started without one refuses to default into that folder.
    """
    import logging

    import mlflow

    if not verbose_logs():
        # A new SQLite store announces its schema creation and every migration on the terminal (INFO lines of
        # MLflow's and alembic's loggers): store internals, not the job's progress; --verbose shows them.
        for name in ("mlflow.store.db.utils", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return
    store = Path("mlruns").resolve()
    if in_ray_job_tempdir(store):
        raise UserError("MLFLOW_TRACKING_URI is not set and this job runs in Ray's temporary working directory; "
                        "pass an absolute tracking URI in the job's runtime env (see README, 'On a cluster')")
    store.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(f"sqlite:///{store}/mlflow.db")


def _set_experiment(name: str) -> Any:
    """``mlflow.set_experiment``, creating a missing experiment with its artifacts beside a SQLite store
    (``<store dir>/artifacts/``) rather than MLflow's default ``./mlruns`` of the current directory, which under
    ``ray job submit`` is Ray's temporary package folder (artifacts lost with the job). Tracking servers
    (http/https URIs) keep their own artifact root."""
    import mlflow

    uri = mlflow.get_tracking_uri()
    if uri.startswith("sqlite:///") and mlflow.get_experiment_by_name(name) is None:
        root = Path(uri[len("sqlite:///"):]).resolve().parent / "artifacts"
        try:
            mlflow.create_experiment(name, artifact_location=root.as_uri())
        except mlflow.exceptions.MlflowException:
            pass  # created meanwhile by a concurrent job
    return mlflow.set_experiment(name)


@contextlib.contextmanager
def mlflow_run(experiment: str, run_name: str, cfg: Any, tags: dict[str, str] | None = None) -> Iterator[Any]:
    """Start an MLflow run that logs the resolved config (flattened) and its hash.

    Inside a pipeline (:func:`pipeline_run`) the run is a child of the pipeline's run, in its experiment, with
    ``experiment`` kept as the ``stage`` tag; otherwise it goes to ``experiment``. Tracking URI: see
    :func:`_set_tracking_uri`.
    """
    import mlflow

    _set_tracking_uri()
    tags = dict(tags or {})
    parent = os.environ.get(PARENT_RUN_ENV)
    if parent and mlflow.active_run() is None:
        tags.update({"mlflow.parentRunId": parent, "stage": tags.get("stage", experiment)})
        exp_id = mlflow.MlflowClient().get_run(parent).info.experiment_id
        run_ctx = mlflow.start_run(run_name=run_name, experiment_id=exp_id, tags=tags)
    else:
        _set_experiment(experiment)
        run_ctx = mlflow.start_run(run_name=run_name, tags=tags, nested=mlflow.active_run() is not None)
    with run_ctx as run:
        flat = _flatten(to_dict(cfg))
        # MLflow caps param values at 6000 chars; configs are small.
        mlflow.log_params({k: str(v)[:500] for k, v in flat.items()})
        mlflow.set_tag("config_hash", config_hash(cfg))
        yield run


@contextlib.contextmanager
def pipeline_run(run_name: str, params: dict[str, Any], experiment: str = "pipeline") -> Iterator[str]:
    """One MLflow parent run for a whole pipeline; stage runs started inside become its children.

    Yields the parent's run id; the run is not left active in this process (stages start their own runs), and it
    ends FINISHED, or FAILED when the pipeline raises.
    """
    import mlflow

    _set_tracking_uri()
    client = mlflow.MlflowClient()
    exp = _set_experiment(experiment)
    parent = client.create_run(exp.experiment_id, run_name=run_name)
    run_id = parent.info.run_id
    for key, value in params.items():
        client.log_param(run_id, key, str(value)[:500])
    previous = os.environ.get(PARENT_RUN_ENV)
    os.environ[PARENT_RUN_ENV] = run_id
    status = "FAILED"
    try:
        yield run_id
        status = "FINISHED"
    finally:
        if previous is None:
            os.environ.pop(PARENT_RUN_ENV, None)
        else:
            os.environ[PARENT_RUN_ENV] = previous
        client.set_terminated(run_id, status)


def mlflow_metric_name(key: str) -> str:
    """An MLflow-safe metric name: ``test/ndcg@10/ci_low`` -> ``test.ndcg_at_10.ci_low``.

    MLflow's file store keeps a metric per file, so it cannot hold both ``x`` and ``x/ci_low``; SQLite can, but one
    spelling everywhere keeps runs comparable across stores.
    """
    return key.replace("/", ".").replace("@", "_at_").replace(">=", "ge").replace(">", "gt")


#: config fields whose values never reach MLflow params (Redis password, reload token, ...)
SECRET_KEY_PARTS = ("password", "token", "secret")


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys of a nested dict; values of secret fields (:data:`SECRET_KEY_PARTS`) that are set become
    ``"***"`` so a logged config never carries them."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        elif v not in (None, "") and any(part in str(k).lower() for part in SECRET_KEY_PARTS):
            out[key] = "***"
        else:
            out[key] = v
    return out
