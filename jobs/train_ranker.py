"""``graphrec train-ranker``: train the MMoE ranker (and single-task baselines) on Ray Train, calibrate, report.

Steps (driver):

1. Read the run's splits, retrieval embeddings, id maps and raw side tables; build the shared
   feature tables once and write them (plus training and validation samples) to
   ``ranking/prepared/`` for the workers to memory-map.
2. ``TorchTrainer`` (``jobs.ray_train.fit``): ``trainer.num_workers`` DDP workers train the MMoE and
   the click/value MLPs on the same batches; each epoch they score the same validation sample, keep
   each model's best weights (lowest validation loss), stop a model after ``early_stopping_patience``
   epochs without improvement, and checkpoint (resume = same ``storage_path`` and ``name``).
3. Fit Platt and isotonic calibrators on the full (never down-sampled) validation split's logits, beside the
   analytic down-sampling correction (``neg_sample_rate < 1``) and the raw sigmoid; choose the serving
   calibrator on validation only (``calibration: auto`` = lowest cross-fitted validation log-loss); score test
   and eval_small (``small_matrix``); write ``metrics.csv``/``metrics.md`` (AUC, MSE/RMSE, ECE equal-mass and
   equal-width, Brier, log-loss per calibrator, MMoE vs single-task; on simulator data also vs the TRUE click
   probability), ``reliability.png`` and ``calibration_curves.json`` (every calibrator's reliability bins),
   ``model.pt``, ``calibrator.json``, ``feature_spec.json``, the baselines and a manifest; log to MLflow.

Negative down-sampling (``neg_sample_rate < 1``) applies to the training samples only.

Workers read ``ranking/prepared/`` by path, so on a multi-node cluster ``run_dir`` must be on storage every
node mounts (as for the other stages' run directories).

Run: ``graphrec train-ranker --run-dir runs/demo`` or
``ray job submit --working-dir . -- python -m jobs.train_ranker --config configs/ranking.yaml
--run-dir /abs/runs/demo``.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from graphrec_ray.calibration.base import Calibrator, fit_calibrator
from graphrec_ray.calibration.downsampling import DownsamplingCalibrator
from graphrec_ray.calibration.reliability import curve_bins, plot_bin_panels
from graphrec_ray.calibration.select import select_calibrator
from graphrec_ray.config import config_hash, from_mapping, to_dict
from graphrec_ray.errors import DataError
from graphrec_ray.layout import RunLayout
from graphrec_ray.manifest import read_manifest, sha256_file, write_manifest
from graphrec_ray.ranking.bundle import FEATURE_SPEC_FILE, save_model, save_serving_tables
from graphrec_ray.ranking.config import RankingConfig
from graphrec_ray.ranking.data import (Events, downsample_negatives, load_events, load_feature_builder,
                                       resolve_data_dir)
from graphrec_ray.ranking.evaluate import PREDICTION_KEYS, metrics_rows, to_markdown, true_click_prob, write_csv
from graphrec_ray.ranking.features import FeatureBuilder
from graphrec_ray.ranking.train import (build_models, fit_input_norms, model_hparams, predict, train_epoch,
                                        validation_scores)
from graphrec_ray.training import EarlyStopping
from jobs.common import init_ray, load_stage_config, make_parser, mlflow_metric_name, mlflow_run

DEFAULT_CONFIG = "configs/ranking.yaml"
PREPARED = "prepared"
CURVES_FILE = "calibration_curves.json"


def train_loop(config: dict[str, Any]) -> None:
    """Per-worker Ray Train loop (see module docstring, step 2)."""
    from jobs.ray_train import load_checkpoint, report, world_rank, world_size

    cfg = from_mapping(RankingConfig, config["cfg"])
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    prepared = Path(config["prepared_dir"])
    builder = FeatureBuilder.load(prepared)
    train, val = Events.load(prepared / "train.npz"), Events.load(prepared / "val_sample.npz")
    rank, ws = world_rank(), world_size()
    models = build_models(cfg, builder.dim, *builder.n_ids)
    fit_input_norms(models, builder, train, cfg.norm_sample_rows, cfg.seed)
    optimizers = {n: torch.optim.Adam(m.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
                  for n, m in models.items()}
    tc = cfg.trainer
    stoppers = {n: EarlyStopping(tc.early_stopping_patience, tc.min_delta) for n in models}
    best = {n: copy.deepcopy(m.state_dict()) for n, m in models.items()}
    history: list[dict[str, float]] = []
    start = 0
    state = load_checkpoint()
    if state is not None and state.get("fingerprint") != config["fingerprint"]:
        raise RuntimeError("the checkpoint of this Ray Train run was made from other inputs or another model config; "
                           "use another --name (the default name already differs per input)")
    if state is not None:  # resume
        for n, m in models.items():
            m.load_state_dict(state["models"][n])
            optimizers[n].load_state_dict(state["optimizers"][n])
            stoppers[n].load_state_dict(state["stoppers"][n])
        best, history, start = state["best"], state["history"], int(state["epoch"]) + 1
    wrapped = dict(models)
    if ws > 1:
        from ray.train.torch import prepare_model

        wrapped = {n: prepare_model(m, move_to_device=False) for n, m in models.items()}
    active = {n for n in models if not stoppers[n].should_stop}
    if state is not None and (not active or start >= cfg.epochs):
        # resumed a run that had already finished: report its checkpoint again so the result carries it
        report(history[-1] if history else {"epoch": float(start - 1)}, state)
        return
    for epoch in range(start, cfg.epochs):
        if not active:
            break
        tr = train_epoch(wrapped, optimizers, builder, train, cfg, epoch, active, rank, ws,
                         progress=bool(config.get("progress")) and rank == 0)
        vs = validation_scores(predict(models, builder, val), val, cfg)
        for n in sorted(active):
            if stoppers[n].update(-vs[f"val_loss/{n}"]):
                best[n] = copy.deepcopy(models[n].state_dict())
        active = {n for n in active if not stoppers[n].should_stop}
        metrics = {"epoch": float(epoch), **tr, **vs,
                   "train_samples_per_s": tr["samples"] * ws / max(tr["seconds"], 1e-9),
                   "active_models": float(len(active))}
        history.append(metrics)
        last = epoch == cfg.epochs - 1 or not active
        save = last or (epoch + 1) % tc.checkpoint_every == 0
        state = {"fingerprint": config["fingerprint"], "epoch": epoch,
                 "models": {n: m.state_dict() for n, m in models.items()},
                 "optimizers": {n: o.state_dict() for n, o in optimizers.items()},
                 "stoppers": {n: s.state_dict() for n, s in stoppers.items()}, "best": best,
                 "history": history, "hparams": model_hparams(cfg, models)} if save else None
        report(metrics, state)


def prepare(cfg: RankingConfig, run_dir: Path, data_dir: Path) -> tuple[FeatureBuilder, dict[str, Events], Path]:
    """Step 1: feature tables and samples, written to ``ranking/prepared/`` for the workers."""
    events = load_events(run_dir, cfg.session_gap_s, cfg.max_train_rows)
    events["train"] = downsample_negatives(events["train"], cfg.neg_sample_rate, cfg.seed)
    if len(events["train"]) == 0 or len(events["val"]) == 0:
        raise DataError(f"{run_dir}: empty train or val split; nothing to train the ranker on")
    builder = load_feature_builder(run_dir, None, data_dir, cfg.session_gap_s)
    prepared = RunLayout(run_dir).ranking / PREPARED
    builder.save(prepared)
    events["train"].save(prepared / "train.npz")
    val = events["val"]
    if len(val) > cfg.val_max_rows:
        val = val.take(np.sort(np.random.default_rng(cfg.seed).choice(len(val), cfg.val_max_rows, replace=False)))
    val.save(prepared / "val_sample.npz")
    return builder, events, prepared


def fingerprint(cfg: RankingConfig, run_dir: Path, data_dir: Path) -> str:
    """16-hex hash of what the trained models depend on: the preprocess outputs (manifest checksums), the
    retrieval embeddings, the raw data folder and the model config, but not the schedule (``epochs``,
    ``trainer``, ``torch_threads``) or the evaluation's ``ci_n_boot``, so a run continued with more epochs still
    resumes."""
    import hashlib

    layout = RunLayout(run_dir)
    schedule = ("epochs", "trainer", "torch_threads", "ci_n_boot")
    model_cfg = {k: v for k, v in to_dict(cfg).items() if k not in schedule}
    parts = [json.dumps(model_cfg, sort_keys=True), str(data_dir),
             json.dumps(read_manifest(layout.preprocess).get("files", {}), sort_keys=True),
             sha256_file(layout.user_embeddings), sha256_file(layout.item_embeddings)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _p_true(data_dir: Path, run_dir: Path, events: Events) -> np.ndarray | None:
    """True click probabilities of ``events`` when ``data_dir`` is simulator data (has ground truth)."""
    from graphrec_ray.data.ground_truth import GT_DIR, GroundTruth

    if not (data_dir / GT_DIR).is_dir():
        return None
    gt = GroundTruth.load(data_dir)
    threshold = float(read_manifest(RunLayout(run_dir).preprocess).get("config", {}).get("click_threshold", 0.5))
    return true_click_prob(lambda u, v: gt.p_watch_at_least(u, v, threshold), events.user_id, events.video_id)


def run(cfg: RankingConfig, run_dir: Path, *, ray_address: str | None = None, progress: bool = True,
        track: bool = True, storage_path: Path | None = None, name: str | None = None) -> dict[str, Any]:
    """Train, calibrate and evaluate the ranker for ``run_dir``; returns a summary (metrics rows, paths, timings).

    Args:
        storage_path: Ray Train storage (checkpoints); default ``run_dir/ranking/ray_train``.
        name: Ray Train run name; the same (storage_path, name) resumes an interrupted run. Default
            ``ranker-<fingerprint>``: rerunning with the same inputs resumes, changed inputs start afresh.
    """
    from jobs.ray_train import fit, result_state

    run_dir = Path(run_dir).resolve()
    layout = RunLayout(run_dir)
    out = layout.ranking
    out.mkdir(parents=True, exist_ok=True)
    data_dir = resolve_data_dir(run_dir, cfg.data_dir).resolve()
    t0 = time.perf_counter()
    builder, events, prepared = prepare(cfg, run_dir, data_dir)
    t_prep = time.perf_counter() - t0
    fp = fingerprint(cfg, run_dir, data_dir)
    if cfg.trainer.num_workers > 0:
        init_ray(ray_address)
    loop_config = {"cfg": to_dict(cfg), "prepared_dir": str(prepared), "progress": progress, "fingerprint": fp}
    result = fit(train_loop, loop_config, cfg.trainer, storage_path or out / "ray_train", name or f"ranker-{fp}")
    state = result_state(result)
    if state is None:
        raise RuntimeError("Ray Train finished without a checkpoint")
    t_train = time.perf_counter() - t0 - t_prep
    models = build_models(cfg, builder.dim, *builder.n_ids)
    for n, m in models.items():
        m.load_state_dict(state["best"][n])
    preds = {s: predict(models, builder, events[s]) for s in ("val", "test", "eval_small")}
    val = events["val"]
    calibrators: dict[str, dict[str, Calibrator]] = {}
    serving: dict[str, str] = {}
    selection: dict[str, dict[str, float]] = {}
    for model, (kl, _) in PREDICTION_KEYS.items():
        if kl in preds["val"]:
            fitted = fit_calibrators(cfg, preds["val"][kl], val.label_click)
            calibrators[model], serving[model], selection[model] = fitted
    rows, panels = [], {}
    for split in ("test", "eval_small"):
        ev, pr = events[split], preds[split]
        p_true = _p_true(data_dir, run_dir, ev)
        for model, cals in calibrators.items():
            kl, kv = PREDICTION_KEYS[model]
            probs = {name: np.clip(c.predict(pr[kl]), 0.0, 1.0) for name, c in cals.items()}
            new_rows = metrics_rows(model, split, pr[kl], pr[kv], ev.label_click, ev.label_value, probs,
                                    cfg.ece_bins, p_true, {"neg_sample_rate": cfg.neg_sample_rate},
                                    users=ev.user_idx, n_boot=cfg.ci_n_boot, ci_seed=cfg.seed)
            for r in new_rows:
                r["serving"] = int(r["calibrator"] == serving[model])
            rows += new_rows
            if split == "test" and model == "mmoe":
                panels["mmoe, test split, vs observed clicks"] = curve_bins(
                    {n: (p, ev.label_click) for n, p in probs.items()}, cfg.ece_bins)
                if p_true is not None:
                    panels["mmoe, test split, vs true p(click)"] = curve_bins(
                        {n: (p, p_true) for n, p in probs.items()}, cfg.ece_bins)
    write_csv(rows, out / "metrics.csv")
    (out / "metrics.md").write_text(to_markdown(rows))
    (out / CURVES_FILE).write_text(json.dumps({"n_bins": cfg.ece_bins, "strategy": "equal_mass",
                                               "neg_sample_rate": cfg.neg_sample_rate, "panels": panels}) + "\n")
    plot_bin_panels(panels, out / "reliability.png",
                    title=f"Ranker reliability, negatives kept at rate {cfg.neg_sample_rate:g}")
    hparams = state["hparams"]
    save_model(models["mmoe"], hparams["mmoe"], layout.ranker_model)
    calibrators["mmoe"][serving["mmoe"]].save(layout.calibrator)
    files = ["model.pt", "calibrator.json", FEATURE_SPEC_FILE, "metrics.csv", "metrics.md", "reliability.png",
             CURVES_FILE, "history.json"]
    if "click" in models:
        torch.save({"hparams": {n: hparams[n] for n in ("click", "value")},
                    "state_dict": {n: models[n].state_dict() for n in ("click", "value")}}, out / "baselines.pt")
        calibrators["single_task"][serving["single_task"]].save(out / "calibrator_single_task.json")
        files += ["baselines.pt", "calibrator_single_task.json"]
    builder.spec.save(out / FEATURE_SPEC_FILE)
    files += save_serving_tables(builder, out)  # serving reads these, never the raw side tables
    history = state["history"]
    (out / "history.json").write_text(json.dumps(history, indent=1) + "\n")
    write_manifest(out, "ranking", config_hash(cfg), files,
                   extra={"data_dir": str(data_dir), "feature_dim": builder.dim, "fingerprint": fp,
                          "calibration": cfg.calibration, "serving_calibrator": serving,
                          "calibrator_selection_val_log_loss": selection, "neg_sample_rate": cfg.neg_sample_rate,
                          "epochs_run": len(history), "rows": {s: len(e) for s, e in events.items()}})
    summary = {"metrics": rows, "history": history, "feature_dim": builder.dim, "out_dir": str(out),
               "seconds": {"prepare": t_prep, "train": t_train, "total": time.perf_counter() - t0},
               "calibrators": {k: calibrators[k][v].to_dict() for k, v in serving.items()},
               "calibrator_selection": selection}
    if track:
        _log_mlflow(cfg, summary, out, files)
    return summary


def fit_calibrators(cfg: RankingConfig, logits: np.ndarray,
                    labels: np.ndarray) -> tuple[dict[str, Calibrator], str, dict[str, float]]:
    """Every reported calibrator fitted on ``(N,)`` validation logits/labels, and the serving choice.

    Returns:
        ``({"raw", ["downsampling" when neg_sample_rate < 1], "platt", "isotonic"}: calibrator, serving name,
        {method: cross-fitted validation log-loss} (empty unless ``calibration == "auto"``))``. The serving
        choice is made on validation only; ``"downsampling"`` at rate 1 is the raw model, reported as ``"raw"``.
    """
    rate = cfg.neg_sample_rate
    cals: dict[str, Calibrator] = {"raw": DownsamplingCalibrator(1.0)}
    if rate < 1.0:
        cals["downsampling"] = DownsamplingCalibrator(rate)
    cals["platt"] = fit_calibrator("platt", logits, labels)
    cals["isotonic"] = fit_calibrator("isotonic", logits, labels)
    scores: dict[str, float] = {}
    method: str = cfg.calibration
    if method == "auto":
        _, scores = select_calibrator(logits, labels, rate, seed=cfg.seed)
        method = min(scores, key=lambda m: scores[m])
    name = "raw" if method == "downsampling" and rate == 1.0 else method
    return cals, name, scores


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
    print((Path(summary["out_dir"]) / "metrics.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
