"""Train the retrieval model and its baselines on Ray Train, evaluate them, write ``run_dir/retrieval/``.

Each embedding model (``lightgcn_ips``, ``lightgcn``, ``mf``, ...) runs as one ``TorchTrainer`` job
(``jobs/ray_train.fit``): DDP over ``trainer.num_workers`` workers, a checkpoint every
``trainer.checkpoint_every`` epochs (model, optimizer, epoch, mined hard negatives, early-stopping state, best
embeddings, config hash), early stopping on validation NDCG@10, and ``FailureConfig`` retries. Running the job
again with the same config resumes each model from its last checkpoint (same storage path and run name).

Outputs (see ``docs/ARCHITECTURE.md``): ``user_embeddings.npy`` / ``item_embeddings.npy`` of ``cfg.model``
(best validation epoch), ``metrics.json`` (every model, every protocol), ``manifest.json`` with
``embedding_version``. MLflow gets the resolved config, per-epoch loss and validation metrics (one nested run per
model), final metrics, and the embeddings and checkpoint as artifacts.

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
from graphrec_ray.evaluation.protocols import (parse_relevance, temporal_protocol, true_preference_protocol,
                                               unbiased_protocol)
from graphrec_ray.ids import IdMap
from graphrec_ray.layout import RunLayout
from graphrec_ray.manifest import read_manifest, write_manifest
from graphrec_ray.retrieval.base import EmbeddingRecommender, Recommender
from graphrec_ray.retrieval.config import RetrievalConfig
from graphrec_ray.retrieval.data import Interactions, load_interactions, union_matrix
from graphrec_ray.training import EarlyStopping

DEFAULT_CONFIG = "configs/retrieval.yaml"
VAL_KS = {"recall_ks": (20,), "ndcg_ks": (10,)}  # cheap per-epoch validation


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


def _item_weights(cfg: RetrievalConfig, inputs: dict[str, Any], positives: Interactions, pre_dir: Path) -> np.ndarray:
    from graphrec_ray.retrieval.build import build_item_weights

    return build_item_weights(cfg, inputs["train"], positives, pre_dir / "item_propensity.parquet")


def resume_key(cfg: RetrievalConfig) -> str:
    """Hash of the fields that define a training run; ``epochs``, baselines, evaluation and Ray resources are
    left out, so a run started again with more epochs or other workers resumes from its checkpoint."""
    from dataclasses import replace

    from graphrec_ray.training import TrainerConfig

    t = cfg.trainer
    core = replace(cfg, epochs=1, baselines=(), model="lightgcn", eval_batch_size=1, experiment="",
                   tracking_uri=None, torch_threads=1,
                   trainer=TrainerConfig(early_stopping_patience=t.early_stopping_patience, min_delta=t.min_delta))
    return config_hash(core)


# ------------------------------------------------------------------------------------ Ray Train worker
def train_loop(config: dict[str, Any]) -> None:
    """Per-worker loop: train ``config["name"]`` with DDP, validate each epoch, checkpoint, stop early."""
    import torch

    import ray.train.torch
    from jobs.ray_train import load_checkpoint, report, world_rank, world_size
    from graphrec_ray.retrieval.build import build_adjacency, build_model, build_trainer, training_positives

    cfg = from_mapping(RetrievalConfig, config["cfg"])
    name, pre_dir = config["name"], Path(config["preprocess_dir"])
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    rank, world = world_rank(), world_size()
    inputs = load_inputs(pre_dir)
    positives = training_positives(cfg, inputs["train"])
    weights = _item_weights(cfg, inputs, positives, pre_dir)
    device = ray.train.torch.get_device() if cfg.trainer.use_gpu else torch.device("cpu")
    model = build_model(name, cfg, positives.n_users, positives.n_items).to(device)
    adj = build_adjacency(cfg, positives, device) if name.startswith("lightgcn") else None
    forward_module = ray.train.torch.prepare_model(model, move_to_device=False) if world > 1 else model
    trainer = build_trainer(name, cfg, positives, weights, adj, rank, world, forward_module, model)
    stopper = EarlyStopping(cfg.trainer.early_stopping_patience, cfg.trainer.min_delta)
    history: list[dict[str, float]] = []
    best: dict[str, Any] | None = None
    chash = resume_key(cfg)

    state = load_checkpoint()
    if state is not None:
        if state["config_hash"] != chash or state["name"] != name:
            raise RuntimeError(f"checkpoint of {state['name']} / config {state['config_hash']} does not match "
                               f"{name} / {chash}")
        trainer.load_state_dict(state["trainer"])
        stopper.load_state_dict(state["early_stopping"])
        history, best = list(state["history"]), state["best"]

    train_seen = positives.matrix()
    if state is not None and (trainer.epoch >= cfg.epochs or stopper.should_stop):
        # a finished run started again: report its checkpointed state once so the result carries a checkpoint
        report(history[-1] if history else {"epoch": float(trainer.epoch)}, state)
        return
    while trainer.epoch < cfg.epochs and not stopper.should_stop:
        t0 = time.perf_counter()
        loss = trainer.run_epoch(progress=rank == 0 and config.get("progress", False))
        u, i = trainer.embeddings()
        val = temporal_protocol(EmbeddingRecommender(u, i).score, inputs["val"], train_seen,
                                cfg.positive_threshold, item_weights=weights, **VAL_KS)
        if stopper.update(val[cfg.val_metric]) or not cfg.keep_best:
            best = {"epoch": trainer.epoch, "user": u, "item": i, "val": val[cfg.val_metric]}
        row = {"epoch": float(trainer.epoch), "loss": float(loss), "epoch_s": time.perf_counter() - t0,
               "samples": float(trainer.last_samples),
               **{f"val_{k}": float(v) for k, v in val.items() if k != "n_users"}}
        history.append(row)
        done = trainer.epoch >= cfg.epochs or stopper.should_stop
        if trainer.epoch % cfg.trainer.checkpoint_every == 0 or done:
            report(row, {"name": name, "config_hash": chash, "trainer": trainer.state_dict(),
                         "early_stopping": stopper.state_dict(), "history": history, "best": best})
        else:
            report(row)


def fit_model(name: str, cfg: RetrievalConfig, layout: RunLayout, progress: bool = False) -> dict[str, Any]:
    """Train one embedding model on Ray Train; returns its final checkpoint state (driver side)."""
    from jobs.ray_train import fit, result_state

    storage = layout.retrieval / "checkpoints"
    run_name = f"{name}-{resume_key(cfg)}"
    loop_cfg = {"cfg": to_dict(cfg), "name": name, "preprocess_dir": str(layout.preprocess.resolve()),
                "progress": progress}
    result = fit(train_loop, loop_cfg, cfg.trainer, storage, run_name)
    state = result_state(result)
    if state is None or state.get("best") is None:
        raise RuntimeError(f"training {name} produced no checkpoint")
    state["checkpoint_path"] = getattr(result.checkpoint, "path", None)
    return state


# --------------------------------------------------------------------------------------------- evaluate
def evaluate(rec: Recommender, cfg: RetrievalConfig, inputs: dict[str, Any], positives: Interactions,
             ground_truth: Any | None = None, item_weights: np.ndarray | None = None) -> dict[str, float]:
    """All protocols for one fitted recommender: ``val/``, ``test/``, ``unbiased/<rule>/``, ``true/``.

    ``item_weights`` (``(I,)`` IPS weights) add ``ips_`` metrics to the temporal protocols.
    """
    train_seen = positives.matrix()
    thr = cfg.positive_threshold
    out: dict[str, float] = {}
    val_pos = inputs["val"].relevant(">=", thr).matrix()
    for k, v in temporal_protocol(rec.score, inputs["val"], train_seen, thr, item_weights=item_weights).items():
        out[f"val/{k}"] = v
    test_excl = union_matrix(train_seen, val_pos)
    for k, v in temporal_protocol(rec.score, inputs["test"], test_excl, thr, item_weights=item_weights).items():
        out[f"test/{k}"] = v
    rules = tuple(parse_relevance(s) for s in cfg.unbiased_relevance)
    if len(inputs["eval_small"]):
        for k, v in unbiased_protocol(rec.score, inputs["eval_small"], train_seen, rules).items():
            out[f"unbiased/{k}"] = v
    if ground_truth is not None and len(inputs["eval_small"]):
        users = np.unique(inputs["eval_small"].user_idx)
        p = ground_truth.p_click(inputs["user_map"].to_raw(users),
                                 inputs["item_map"].to_raw(np.arange(inputs["n_items"])))
        for k, v in true_preference_protocol(rec.score, users, p, train_seen, cfg.true_pref_threshold).items():
            out[f"true/{k}"] = v
    return out


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
def run(cfg: RetrievalConfig, run_dir: Path, progress: bool = False) -> dict[str, Any]:
    """Train ``cfg.model`` and ``cfg.baselines``, evaluate all, write outputs; returns the metrics dict.

    Needs a connected Ray cluster (``jobs.common.init_ray``) unless ``cfg.trainer.num_workers == 0``.
    """
    import mlflow

    from graphrec_ray.retrieval.build import training_positives
    from graphrec_ray.retrieval.popularity import MostPopular
    from jobs.common import mlflow_run

    layout = RunLayout(Path(run_dir))
    inputs = load_inputs(layout.preprocess)
    layout.retrieval.mkdir(parents=True, exist_ok=True)
    positives = training_positives(cfg, inputs["train"])
    weights = _item_weights(cfg, inputs, positives, layout.preprocess)
    gt = _load_ground_truth(layout)
    if cfg.tracking_uri:
        mlflow.set_tracking_uri(cfg.tracking_uri)
    names = [cfg.model] + [b for b in cfg.baselines if b != cfg.model]
    metrics: dict[str, Any] = {"models": {}, "primary": cfg.model}
    with mlflow_run(cfg.experiment, "train-retrieval", cfg, tags={"stage": "retrieval"}):
        for name in names:
            t0 = time.perf_counter()
            with mlflow.start_run(run_name=name, nested=True):
                if name == "popularity":
                    rec: Recommender = MostPopular().fit(positives)
                    info: dict[str, Any] = {}
                else:
                    state = fit_model(name, cfg, layout, progress)
                    for row in state["history"]:
                        step = int(row["epoch"])
                        mlflow.log_metrics({_mlflow_key(k): v for k, v in row.items()
                                            if k != "epoch" and np.isfinite(v)}, step=step)
                    best = state["best"]
                    rec = EmbeddingRecommender(best["user"], best["item"])
                    info = {"best_epoch": int(best["epoch"]), "epochs_run": int(state["trainer"]["epoch"])}
                    if name == cfg.model:
                        _write_embeddings(layout, best["user"], best["item"])
                        if state.get("checkpoint_path"):
                            mlflow.log_artifact(os.path.join(state["checkpoint_path"], "state.pt"), "checkpoint")
                m = evaluate(rec, cfg, inputs, positives, gt, weights)
                m_info = {**info, "train_s": time.perf_counter() - t0}
                mlflow.log_metrics({_mlflow_key(k): v for k, v in m.items() if np.isfinite(v)})
                mlflow.log_metrics({k: float(v) for k, v in m_info.items()})
                metrics["models"][name] = {**m, **m_info}
        emb_version = _write_outputs(layout, cfg, metrics)
        mlflow.log_artifact(str(layout.user_embeddings), "embeddings")
        mlflow.log_artifact(str(layout.item_embeddings), "embeddings")
        mlflow.log_artifact(str(layout.retrieval / "metrics.json"))
        mlflow.set_tag("embedding_version", emb_version)
    metrics["embedding_version"] = emb_version
    return metrics


def _mlflow_key(k: str) -> str:
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
                    "n_items": int(np.load(layout.item_embeddings, mmap_mode="r").shape[0])})
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
