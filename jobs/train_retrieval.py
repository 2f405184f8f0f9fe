"""Train the retrieval model and its baselines on Ray Train, evaluate them, write ``run_dir/retrieval/``.

The stage itself (inputs, evaluation, outputs, resume key) is :mod:`graphrec_ray.retrieval.stage`; this job only
parses arguments, starts Ray, runs each model's fit as a Ray Train job and logs to MLflow.

Each embedding model (``lightgcn_ips``, ``lightgcn``, ``mf``, ...) runs as one ``TorchTrainer`` job
(``jobs/ray_train.fit``) of the select-then-refit loop of :mod:`graphrec_ray.retrieval.fit`: DDP over
``trainer.num_workers`` workers with a fixed global batch (the same optimiser steps for any worker count), a step
budget that scales with the number of positives, validation every ``eval_every`` steps on plain Recall@20,
early stopping only after ``min_steps``, then a refit on training + validation positives for the selected number
of steps. A checkpoint every ``trainer.checkpoint_every`` validation points / refit chunks holds the phase,
model, optimizer, step, mined hard negatives, history and config hash; ``FailureConfig`` retries. Running the
job again with the same config resumes each model from its last checkpoint (same storage path and run name).

Outputs (see ``docs/ARCHITECTURE.md``): ``user_embeddings.npy`` / ``item_embeddings.npy`` of ``cfg.model``
(the refit), ``metrics.json`` (every model, every protocol, the selected and refit steps), ``manifest.json``
with ``embedding_version`` and the Tune search's choice when one was applied. MLflow gets the resolved config,
per-step loss and validation metrics (one nested run per model), final metrics, and the embeddings and
checkpoint as artifacts.

Usage::

    python -m jobs.train_retrieval --config configs/retrieval.yaml --run-dir runs/demo [key=value ...]
"""

from __future__ import annotations

import os
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from graphrec_ray.config import from_mapping, to_dict
from graphrec_ray.layout import RunLayout
from graphrec_ray.retrieval import stage
from graphrec_ray.retrieval.config import RetrievalConfig
from graphrec_ray.retrieval.stage import load_inputs, resume_key

DEFAULT_CONFIG = "configs/retrieval.yaml"


# ------------------------------------------------------------------------------------ Ray Train worker
def train_loop(config: dict[str, Any]) -> None:
    """Per-worker loop: :func:`graphrec_ray.retrieval.stage.fit_one` for ``config["name"]`` with DDP,
    checkpointing every ``trainer.checkpoint_every`` validation points / refit chunks."""
    import torch

    import ray.train.torch
    from jobs.ray_train import load_checkpoint, report, world_rank, world_size

    cfg = from_mapping(RetrievalConfig, config["cfg"])
    name, pre_dir = config["name"], Path(config["preprocess_dir"])
    fixed_steps = config.get("fixed_steps")
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    rank, world = world_rank(), world_size()
    device = ray.train.torch.get_device() if cfg.trainer.use_gpu else torch.device("cpu")
    chash = resume_key(cfg)
    state = load_checkpoint()
    if state is not None:
        if state["config_hash"] != chash or state["name"] != name or state.get("fixed_steps") != fixed_steps:
            raise RuntimeError(f"checkpoint of {state['name']} / config {state['config_hash']} does not match "
                               f"{name} / {chash}")
        if state["phase"] == "done":  # a finished run started again: report its state once more
            report(state["history"][-1] if state["history"] else {"step": 0.0}, state)
            return
    points = {"n": 0}
    t0 = {"t": time.perf_counter()}

    def on_point(row: dict[str, float], thunk: Any) -> None:
        points["n"] += 1
        row = {**row, "point_s": time.perf_counter() - t0["t"]}
        t0["t"] = time.perf_counter()
        st = thunk()
        if st["phase"] == "done" or points["n"] % cfg.trainer.checkpoint_every == 0:
            report(row, {**st, "name": name, "config_hash": chash, "fixed_steps": fixed_steps})
        else:
            report(row)

    wrap = (lambda m: ray.train.torch.prepare_model(m, move_to_device=False)) if world > 1 else None
    stage.fit_one(name, cfg, load_inputs(pre_dir), RunLayout(pre_dir.parent), fixed_steps, state, on_point,
                  progress=rank == 0 and config.get("progress", False), device=device, rank=rank, world=world,
                  wrap=wrap)


def fit_model(name: str, cfg: RetrievalConfig, layout: RunLayout, fixed_steps: int | None = None,
              progress: bool = False) -> dict[str, Any]:
    """Select-then-refit one embedding model on Ray Train; returns its final state (driver side). The stage's
    ``fit_model`` (:data:`graphrec_ray.retrieval.stage.FitModel`).

    Args:
        fixed_steps: skip selection and refit for this many steps (the Tune search's choice).
    """
    from jobs.ray_train import fit, result_state, worker_progress

    storage = layout.retrieval_checkpoints
    run_name = f"{name}-{resume_key(cfg)}" + (f"-steps{fixed_steps}" if fixed_steps else "")
    loop_cfg = {"cfg": to_dict(cfg), "name": name, "preprocess_dir": str(layout.preprocess.resolve()),
                "progress": worker_progress(progress, cfg.trainer), "fixed_steps": fixed_steps}
    result = fit(train_loop, loop_cfg, cfg.trainer, storage, run_name,
                 progress_label=f"train-retrieval {name}" if progress else None)
    state = result_state(result)
    if state is None or state.get("phase") != "done":
        raise RuntimeError(f"training {name} produced no final checkpoint")
    state["checkpoint_path"] = getattr(result.checkpoint, "path", None)
    return state


# ------------------------------------------------------------------------------------------------- run
def run(cfg: RetrievalConfig, run_dir: Path, progress: bool = False) -> dict[str, Any]:
    """The retrieval stage (:func:`graphrec_ray.retrieval.stage.run`) with Ray Train fits, logged to MLflow:
    the resolved config, per-step loss and validation metrics (one nested run per model), final metrics, and the
    embeddings and checkpoint as artifacts. Needs a connected Ray cluster (``jobs.common.init_ray``) unless
    ``cfg.trainer.num_workers == 0``."""
    import mlflow

    from jobs.common import mlflow_metric_name, mlflow_run

    layout = RunLayout(Path(run_dir))
    if cfg.tracking_uri:
        mlflow.set_tracking_uri(cfg.tracking_uri)
    search = stage.load_search(layout) if cfg.use_search else None
    primary = stage.apply_search(cfg, search).model

    def log_model(name: str, m: dict[str, float], state: dict[str, Any] | None) -> None:
        with mlflow.start_run(run_name=name, nested=True):
            for row in (state or {}).get("history", []):
                mlflow.log_metrics({mlflow_metric_name(k): v for k, v in row.items() if k != "step" and np.isfinite(v)},
                                   step=int(row["step"]))
            mlflow.log_metrics({mlflow_metric_name(k): float(v) for k, v in m.items() if np.isfinite(v)})
            if name == primary and state is not None and state.get("checkpoint_path"):
                mlflow.log_artifact(os.path.join(state["checkpoint_path"], "state.pt"), "checkpoint")

    with mlflow_run(cfg.experiment, "train-retrieval", cfg, tags={"stage": "retrieval"}):
        if search is not None:
            mlflow.log_params({f"search.{k}": v for k, v in search["params"].items()})
            mlflow.log_param("search.steps", search["steps"])
        metrics = stage.run(cfg, layout, partial(fit_model, progress=progress), log_model,
                            concurrent=cfg.concurrent_fits if cfg.trainer.num_workers > 0 else 1)
        mlflow.log_artifact(str(layout.user_embeddings), "embeddings")
        mlflow.log_artifact(str(layout.item_embeddings), "embeddings")
        mlflow.log_artifact(str(layout.retrieval_metrics))
        mlflow.set_tag("embedding_version", metrics["embedding_version"])
    return metrics


def main(argv: list[str] | None = None) -> int:
    from jobs.common import init_ray, load_stage_config, make_parser

    parser = make_parser("graphrec train-retrieval", "Train LightGCN (IPS-BPR) and baselines on Ray Train.",
                         DEFAULT_CONFIG)
    args = parser.parse_args(argv)
    cfg = load_stage_config(RetrievalConfig, args)
    load_inputs(RunLayout(Path(args.run_dir)).preprocess)  # fail with one line before starting Ray
    if cfg.trainer.num_workers > 0:
        init_ray(args.ray_address)
    metrics = run(cfg, Path(args.run_dir), progress=True)
    primary = metrics["models"][cfg.model]
    keys = [k for k in ("test/ndcg@10", "unbiased/ge0.5/ndcg@10", "unbiased/gt2.0/ndcg@10", "true/ndcg@10")
            if k in primary]
    for name, m in metrics["models"].items():
        print(f"{name:>14}: " + "  ".join(f"{k}={m[k]:.4f}" for k in keys if k in m))
    print(f"embedding_version={metrics['embedding_version']} -> {RunLayout(Path(args.run_dir)).retrieval}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
