"""Train the retrieval model and its baselines on Ray Train, evaluate them, write ``run_dir/retrieval/``.

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

import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from graphrec_ray.config import config_hash, from_mapping, to_dict
from graphrec_ray.errors import DataError
from graphrec_ray.ids import IdMap
from graphrec_ray.interactions import Interactions, load_interactions
from graphrec_ray.layout import RunLayout
from graphrec_ray.manifest import read_manifest, write_manifest
from graphrec_ray.retrieval.base import EmbeddingRecommender
from graphrec_ray.retrieval.config import RetrievalConfig

DEFAULT_CONFIG = "configs/retrieval.yaml"
PER_USER_DIR = "per_user"  # under run_dir/retrieval/: one seed=<seed>.npz per training seed (graphrec report)


# ---------------------------------------------------------------------------------------------- inputs
def load_inputs(preprocess_dir: str | Path) -> dict[str, Any]:
    """Id-map sizes and the four splits from ``run_dir/preprocess``."""
    layout = RunLayout(Path(preprocess_dir).parent)
    if not layout.user_map.is_file() or not layout.item_map.is_file():
        raise DataError(f"no preprocessed data in {layout.preprocess} (run `graphrec preprocess` first)")
    users, items = IdMap.load(layout.user_map), IdMap.load(layout.item_map)
    U, I = len(users), len(items)
    out: dict[str, Any] = {"n_users": U, "n_items": I, "user_map": users, "item_map": items}
    for split in ("train", "val", "test", "eval_small"):
        out[split] = load_interactions(layout.split(split), U, I)
    return out


def _item_weights(cfg: RetrievalConfig, exposures: Interactions, positives: Interactions,
                  pre_dir: Path) -> np.ndarray:
    from graphrec_ray.retrieval.build import build_item_weights

    return build_item_weights(cfg, exposures, positives, pre_dir / "item_propensity.parquet")


def resume_key(cfg: RetrievalConfig) -> str:
    """Hash of the fields that define a training run; the step budget (``epochs``, ``max_steps``), baselines,
    evaluation and Ray resources are left out, so a run started again with a longer budget or other workers resumes
    from its checkpoint (the global batch, hence every optimiser step, does not depend on the worker count)."""
    from dataclasses import replace

    from graphrec_ray.training import TrainerConfig

    t = cfg.trainer
    core = replace(cfg, epochs=1, max_steps=0, max_evals=1, baselines=(), model="lightgcn", eval_batch_size=1,
                   experiment="", tracking_uri=None, torch_threads=1,
                   trainer=TrainerConfig(early_stopping_patience=t.early_stopping_patience, min_delta=t.min_delta))
    return config_hash(core)


# ------------------------------------------------------------------------------------ Ray Train worker
def train_loop(config: dict[str, Any]) -> None:
    """Per-worker loop: select-then-refit ``config["name"]`` with DDP (:mod:`graphrec_ray.retrieval.fit`),
    checkpointing every ``trainer.checkpoint_every`` validation points / refit chunks."""
    import torch

    import ray.train.torch
    from graphrec_ray.retrieval.build import build_adjacency, build_model, build_trainer, training_positives
    from graphrec_ray.retrieval.fit import budget_for, select_then_refit, validation_fn
    from jobs.ray_train import load_checkpoint, report, world_rank, world_size

    cfg = from_mapping(RetrievalConfig, config["cfg"])
    name, pre_dir = config["name"], Path(config["preprocess_dir"])
    fixed_steps = config.get("fixed_steps")
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    rank, world = world_rank(), world_size()
    inputs = load_inputs(pre_dir)
    train_pos = training_positives(cfg, inputs["train"])
    all_rows = inputs["train"].concat(inputs["val"])
    refit_pos = training_positives(cfg, all_rows)
    w_sel = _item_weights(cfg, inputs["train"], train_pos, pre_dir)
    w_ref = _item_weights(cfg, all_rows, refit_pos, pre_dir)
    device = ray.train.torch.get_device() if cfg.trainer.use_gpu else torch.device("cpu")

    def make(pos: Interactions, phase: str) -> Any:
        model = build_model(name, cfg, pos.n_users, pos.n_items).to(device)
        adj = build_adjacency(cfg, pos, device) if name.startswith("lightgcn") else None
        fwd = ray.train.torch.prepare_model(model, move_to_device=False) if world > 1 else model
        return build_trainer(name, cfg, pos, w_sel if phase == "select" else w_ref, adj, rank, world, fwd, model)

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

    select_then_refit(make, validation_fn(cfg, inputs["val"], train_pos, w_sel), train_pos, refit_pos,
                      budget_for(cfg, len(train_pos)), cfg.val_metric, cfg.trainer.early_stopping_patience,
                      cfg.trainer.min_delta, cfg.refit, fixed_steps, state, on_point,
                      progress=rank == 0 and config.get("progress", False))


def fit_model(name: str, cfg: RetrievalConfig, layout: RunLayout, progress: bool = False,
              fixed_steps: int | None = None) -> dict[str, Any]:
    """Select-then-refit one embedding model on Ray Train; returns its final state (driver side).

    Args:
        fixed_steps: skip selection and refit for this many steps (the Tune search's choice).
    """
    from jobs.ray_train import fit, result_state

    storage = layout.retrieval / "checkpoints"
    run_name = f"{name}-{resume_key(cfg)}" + (f"-steps{fixed_steps}" if fixed_steps else "")
    loop_cfg = {"cfg": to_dict(cfg), "name": name, "preprocess_dir": str(layout.preprocess.resolve()),
                "progress": progress, "fixed_steps": fixed_steps}
    result = fit(train_loop, loop_cfg, cfg.trainer, storage, run_name)
    state = result_state(result)
    if state is None or state.get("phase") != "done":
        raise RuntimeError(f"training {name} produced no final checkpoint")
    state["checkpoint_path"] = getattr(result.checkpoint, "path", None)
    return state


# --------------------------------------------------------------------------------------------- evaluate
def _load_ground_truth(layout: RunLayout) -> Any | None:
    """The simulator's ground truth when the preprocessed data came from the simulator, else None."""
    try:
        data_dir = read_manifest(layout.preprocess).get("data_dir")
    except FileNotFoundError:
        return None
    if not data_dir or not (Path(data_dir) / "ground_truth").is_dir():
        return None
    from graphrec_ray.data.ground_truth import GroundTruth

    return GroundTruth.load(data_dir)


# ------------------------------------------------------------------------------------------------- run
SEARCH_FILE = "search.json"  # graphrec tune-retrieval's choice, under run_dir/retrieval/


def load_search(layout: RunLayout) -> dict[str, Any] | None:
    """``run_dir/retrieval/search.json`` written by ``graphrec tune-retrieval``, or None."""
    path = layout.retrieval / SEARCH_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def apply_search(cfg: RetrievalConfig, search: dict[str, Any] | None) -> RetrievalConfig:
    """``cfg`` with the searched hyperparameters (``search["params"]``) when ``cfg.use_search``."""
    from graphrec_ray.retrieval.fit import with_params

    if search is None or not cfg.use_search:
        return cfg
    return with_params(cfg, search["params"])


def run(cfg: RetrievalConfig, run_dir: Path, progress: bool = False) -> dict[str, Any]:
    """Select-then-refit ``cfg.model`` and ``cfg.baselines``, evaluate all, write outputs; returns the metrics.

    When ``run_dir/retrieval/search.json`` exists (``graphrec tune-retrieval``) and ``cfg.use_search``, its
    hyperparameters replace ``cfg``'s and the searched model is refit for the searched number of steps without a
    second selection. Needs a connected Ray cluster (``jobs.common.init_ray``) unless
    ``cfg.trainer.num_workers == 0``.
    """
    import mlflow

    from graphrec_ray.evaluation.compare import save_per_user
    from graphrec_ray.retrieval.build import training_positives
    from graphrec_ray.retrieval.evaluate import evaluate
    from graphrec_ray.retrieval.popularity import MostPopular
    from jobs.common import mlflow_run

    layout = RunLayout(Path(run_dir))
    inputs = load_inputs(layout.preprocess)
    layout.retrieval.mkdir(parents=True, exist_ok=True)
    search = load_search(layout) if cfg.use_search else None
    cfg = apply_search(cfg, search)
    positives = training_positives(cfg, inputs["train"])
    all_rows = inputs["train"].concat(inputs["val"])
    refit_pos = training_positives(cfg, all_rows) if cfg.refit else positives
    refit_splits = ("train", "val") if cfg.refit else ("train",)
    weights = _item_weights(cfg, inputs["train"], positives, layout.preprocess)
    gt = _load_ground_truth(layout)
    if cfg.tracking_uri:
        mlflow.set_tracking_uri(cfg.tracking_uri)
    names = [cfg.model] + [b for b in cfg.baselines if b != cfg.model]
    per_user: dict[str, dict[str, np.ndarray]] = {}
    metrics: dict[str, Any] = {"models": {}, "primary": cfg.model,
                               "search": None if search is None else {"params": search["params"],
                                                                     "steps": search["steps"],
                                                                     "model": search["model"]}}
    with mlflow_run(cfg.experiment, "train-retrieval", cfg, tags={"stage": "retrieval"}):
        if search is not None:
            mlflow.log_params({f"search.{k}": v for k, v in search["params"].items()})
            mlflow.log_param("search.steps", search["steps"])
        for name in names:
            t0 = time.perf_counter()
            with mlflow.start_run(run_name=name, nested=True):
                if name == "popularity":
                    m = evaluate(MostPopular().fit(positives), cfg, inputs, ("train",), None, weights,
                                 validation=True)  # validation score of the train-only fit, for reference
                    m = {k: v for k, v in m.items() if k.startswith("val/")}
                    m.update(evaluate(MostPopular().fit(refit_pos), cfg, inputs, refit_splits, gt, weights,
                                      per_user=per_user.setdefault(name, {})))
                    info: dict[str, Any] = {}
                else:
                    fixed = int(search["steps"]) if search is not None and search["model"] == name else None
                    state = fit_model(name, cfg, layout, progress, fixed_steps=fixed)
                    for row in state["history"]:
                        mlflow.log_metrics({_mlflow_key(k): v for k, v in row.items()
                                            if k != "step" and np.isfinite(v)}, step=int(row["step"]))
                    rec = EmbeddingRecommender(state["user"], state["item"])
                    sel = [r for r in state["history"] if r.get("phase") == 0.0]
                    best = [r for r in sel if int(r["step"]) == int(state["selected_step"])]
                    info = {"selected_step": int(state["selected_step"]), "budget_steps": int(state["budget_steps"]),
                            "refit_steps": int(state["refit_steps"]), "selection_points": len(sel),
                            "steps_run": int(sel[-1]["step"]) if sel else 0}
                    m = {f"val/{k[4:]}": v for k, v in (best[0] if best else {}).items() if k.startswith("val_")}
                    if name == cfg.model:
                        _write_embeddings(layout, state["user"], state["item"])
                        if state.get("checkpoint_path"):
                            mlflow.log_artifact(os.path.join(state["checkpoint_path"], "state.pt"), "checkpoint")
                    m.update(evaluate(rec, cfg, inputs, refit_splits, gt, weights, per_user=per_user.setdefault(name, {})))
                m_info = {**info, "train_s": time.perf_counter() - t0}
                mlflow.log_metrics({_mlflow_key(k): v for k, v in m.items() if np.isfinite(v)})
                mlflow.log_metrics({k: float(v) for k, v in m_info.items()})
                metrics["models"][name] = {**m, **m_info}
        # per-user values of this seed, for paired comparisons over >= 3 seeds (graphrec report)
        save_per_user(layout.retrieval / PER_USER_DIR / f"seed={cfg.seed}.npz", per_user)
        emb_version = _write_outputs(layout, cfg, metrics)
        mlflow.log_artifact(str(layout.user_embeddings), "embeddings")
        mlflow.log_artifact(str(layout.item_embeddings), "embeddings")
        mlflow.log_artifact(str(layout.retrieval / "metrics.json"))
        mlflow.set_tag("embedding_version", emb_version)
    metrics["embedding_version"] = emb_version
    return metrics


def _mlflow_key(k: str) -> str:
    """MLflow-safe name; ``x/ci_low`` -> ``x_ci_low`` (the file store cannot hold both ``x`` and ``x/ci_low``)."""
    k = k.replace("/ci_low", "_ci_low").replace("/ci_high", "_ci_high")
    return k.replace("@", "_at_").replace(">=", "ge").replace(">", "gt")


def _write_embeddings(layout: RunLayout, user: np.ndarray, item: np.ndarray) -> None:
    np.save(layout.user_embeddings, np.ascontiguousarray(user, dtype=np.float32))
    np.save(layout.item_embeddings, np.ascontiguousarray(item, dtype=np.float32))


def _write_outputs(layout: RunLayout, cfg: RetrievalConfig, metrics: dict[str, Any]) -> str:
    h = hashlib.sha256()
    for p in (layout.user_embeddings, layout.item_embeddings):
        h.update(p.read_bytes())
    version = h.hexdigest()[:16]
    (layout.retrieval / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    dim = int(np.load(layout.item_embeddings, mmap_mode="r").shape[1])
    write_manifest(layout.retrieval, "retrieval", config_hash(cfg),
                   ["user_embeddings.npy", "item_embeddings.npy", "metrics.json"],
                   {"embedding_version": version, "dim": dim, "model": cfg.model,
                    "score": "inner_product", "n_users": int(np.load(layout.user_embeddings, mmap_mode="r").shape[0]),
                    "n_items": int(np.load(layout.item_embeddings, mmap_mode="r").shape[0]),
                    "selected_step": metrics["models"][cfg.model].get("selected_step"),
                    "refit_steps": metrics["models"][cfg.model].get("refit_steps"),
                    "search": metrics.get("search")})
    return version


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
