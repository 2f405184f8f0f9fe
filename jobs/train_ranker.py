"""``graphrec train-ranker``: train the MMoE ranker (and single-task baselines) on Ray Train, calibrate, report.

The stage (feature preparation, the training loop, calibration, evaluation, outputs) is
:mod:`graphrec_ray.ranking.stage`; this job parses arguments, starts Ray, runs the stage's training loop as a
``TorchTrainer`` (``jobs.ray_train.fit``: ``trainer.num_workers`` DDP workers, a checkpoint every
``trainer.checkpoint_every`` epochs; resume = same ``storage_path`` and ``name``) and logs to MLflow.

Workers read ``ranking/prepared/`` by path, so on a multi-node cluster ``run_dir`` must be on storage every
node mounts (as for the other stages' run directories).

Run: ``graphrec train-ranker --run-dir runs/demo`` or
``ray job submit --working-dir . -- python -m jobs.train_ranker --config configs/ranking.yaml
--run-dir /abs/runs/demo``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from graphrec_ray.config import from_mapping, to_dict
from graphrec_ray.layout import RunLayout
from graphrec_ray.ranking import stage
from graphrec_ray.ranking.config import RankingConfig
from jobs.common import init_ray, load_stage_config, make_parser, mlflow_metric_name, mlflow_run

DEFAULT_CONFIG = "configs/ranking.yaml"


def train_loop(config: dict[str, Any]) -> None:
    """Per-worker Ray Train loop: :func:`graphrec_ray.ranking.stage.train_models` with DDP and checkpoints."""
    from jobs.ray_train import load_checkpoint, report, world_rank, world_size

    cfg = from_mapping(RankingConfig, config["cfg"])
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    wrap = None
    if world_size() > 1:
        from ray.train.torch import prepare_model

        def wrap(m: torch.nn.Module) -> torch.nn.Module:
            return prepare_model(m, move_to_device=False)

    stage.train_models(cfg, Path(config["prepared_dir"]), config["fingerprint"], load_checkpoint(), report,
                       world_rank(), world_size(), wrap, progress=bool(config.get("progress")))


def run(cfg: RankingConfig, run_dir: Path, *, ray_address: str | None = None, progress: bool = True,
        track: bool = True, storage_path: Path | None = None, name: str | None = None) -> dict[str, Any]:
    """The ranking stage (:func:`graphrec_ray.ranking.stage.run`) trained on Ray Train; returns its summary.

    Args:
        storage_path: Ray Train storage (checkpoints); default ``run_dir/ranking/ray_train``.
        name: Ray Train run name; the same (storage_path, name) resumes an interrupted run. Default
            ``ranker-<fingerprint>``: rerunning with the same inputs resumes, changed inputs start afresh.
        track: log to MLflow.
    """
    from jobs.ray_train import fit, result_state, worker_progress

    layout = RunLayout(Path(run_dir).resolve())

    def train_on_ray(cfg: RankingConfig, prepared: Path, fp: str) -> dict[str, Any]:
        if cfg.trainer.num_workers > 0:
            init_ray(ray_address)
        loop_config = {"cfg": to_dict(cfg), "prepared_dir": str(prepared), "fingerprint": fp,
                       "progress": worker_progress(progress, cfg.trainer)}
        result = fit(train_loop, loop_config, cfg.trainer, storage_path or layout.ranking_ray_train,
                     name or f"ranker-{fp}", progress_label="train-ranker" if progress else None)
        state = result_state(result)
        if state is None:
            raise RuntimeError("Ray Train finished without a checkpoint")
        return state

    summary = stage.run(cfg, layout, train_on_ray)
    if track:
        _log_mlflow(cfg, summary, layout.ranking, summary["files"])
    return summary


def _log_mlflow(cfg: RankingConfig, summary: dict[str, Any], out: Path, files: list[str]) -> None:
    import mlflow

    with mlflow_run("ranking", "train-ranker", cfg, tags={"workers": str(cfg.trainer.num_workers)}):
        for step, h in enumerate(summary["history"]):
            mlflow.log_metrics({mlflow_metric_name(k): float(v) for k, v in h.items()}, step=step)
        for r in summary["metrics"]:
            mlflow.log_metrics({mlflow_metric_name(f"{r['model']}.{r['split']}.{r['calibrator']}.{k}"): float(v)
                                for k, v in r.items() if isinstance(v, (int, float)) and k != "n" and np.isfinite(v)})
        mlflow.log_metrics({f"seconds_{k}": v for k, v in summary["seconds"].items()})
        for f in files:
            if f.endswith((".csv", ".md", ".png", ".json")):
                mlflow.log_artifact(str(out / f))


def main(argv: list[str] | None = None) -> int:
    p = make_parser("graphrec train-ranker", "Train the MMoE ranker on Ray Train, calibrate it and report metrics.",
                    DEFAULT_CONFIG)
    p.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")
    p.add_argument("--name", default=None,
                   help="Ray Train run name (default ranker-<input fingerprint>); the same name resumes")
    args = p.parse_args(argv)
    cfg = load_stage_config(RankingConfig, args)
    summary = run(cfg, Path(args.run_dir), ray_address=args.ray_address, track=not args.no_mlflow, name=args.name)
    print(RunLayout(Path(args.run_dir)).ranking_metrics_md.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
