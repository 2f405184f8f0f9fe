"""The ranking stage: prepare features, train the MMoE (and single-task baselines), calibrate, report, save.

One entry, :func:`run`, that a unit test calls without Ray: the training is injected (``train``; default
:func:`train_local`, :func:`train_models` in this process), so ``jobs/train_ranker.py`` only runs
:func:`train_models` inside Ray Train's DDP workers (with checkpoints) and logs to MLflow.

Steps:

1. Read the run's splits, retrieval embeddings, id maps and raw side tables; build the shared feature tables once
   and write them (plus training and validation samples) to ``ranking/prepared/`` (:func:`prepare`), where the
   workers memory-map them.
2. Train (:func:`train_models`): the MMoE and the click/value MLPs (only up to ``baselines_max_rows`` training rows:
   reported, never served) on the same batches; each epoch they score the
   same validation sample, keep each model's best weights (lowest validation loss) and stop a model after
   ``early_stopping_patience`` epochs without improvement.
3. Fit Platt and isotonic calibrators on the full (never down-sampled) validation split's logits, beside the
   analytic down-sampling correction (``neg_sample_rate < 1``) and the raw sigmoid; choose the serving
   calibrator on validation only (``calibration: auto`` = lowest cross-fitted validation log-loss,
   :func:`fit_calibrators`); score test and eval_small (``small_matrix``); write ``metrics.csv``/``metrics.md``
   (AUC, MSE/RMSE, ECE equal-mass and equal-width, Brier, log-loss per calibrator, MMoE vs single-task; on
   simulator data also vs the TRUE click probability), ``reliability.png`` and ``calibration_curves.json``,
   ``model.pt``, ``calibrator.json``, ``feature_spec.json``, the serving tables, the baselines and a manifest.

Negative down-sampling (``neg_sample_rate < 1``) applies to the training samples only.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from graphrec_ray.calibration.downsampling import DownsamplingCalibrator
from graphrec_ray.calibration.factory import Calibrator, fit_calibrator
from graphrec_ray.calibration.reliability import curve_bins, plot_bin_panels
from graphrec_ray.calibration.select import select_calibrator
from graphrec_ray.config import config_hash, to_dict
from graphrec_ray.errors import DataError
from graphrec_ray.layout import RunLayout
from graphrec_ray.manifest import read_manifest, sha256_file, write_manifest
from graphrec_ray.ranking.bundle import FEATURE_SPEC_FILE, save_model, save_serving_tables
from graphrec_ray.ranking.config import RankingConfig
from graphrec_ray.ranking.data import Events, downsample_negatives, load_events, load_feature_builder, \
    resolve_data_dir
from graphrec_ray.ranking.evaluate import PREDICTION_KEYS, metrics_rows, to_markdown, true_click_prob, write_csv
from graphrec_ray.ranking.features import FeatureBuilder
from graphrec_ray.ranking.train import build_models, fit_input_norms, model_hparams, predict, train_epoch, \
    validation_scores
from graphrec_ray.training import EarlyStopping

TRAIN_DIR, VAL_DIR = "train", "val_sample"  # in ranking/prepared/: the training rows, the per-epoch validation sample
#: ``(cfg, prepared_dir, fingerprint) -> final training state`` (``best``, ``hparams``, ``history``, ...)
Train = Callable[[RankingConfig, Path, str], dict[str, Any]]
#: ``(metrics, state or None) -> None``: called after every epoch, with the state when it is to be checkpointed
Report = Callable[[dict[str, float], "dict[str, Any] | None"], None]


# ---------------------------------------------------------------------------------------------- prepare
def prepare(cfg: RankingConfig, run_dir: Path, data_dir: Path) -> tuple[FeatureBuilder, dict[str, Events], Path]:
    """Step 1: feature tables and samples, written to ``ranking/prepared/`` for the workers."""
    events = load_events(run_dir, cfg.session_gap_s, cfg.max_train_rows)
    events["train"] = downsample_negatives(events["train"], cfg.neg_sample_rate, cfg.seed)
    if len(events["train"]) == 0 or len(events["val"]) == 0:
        raise DataError(f"{run_dir}: empty train or val split; nothing to train the ranker on")
    builder = load_feature_builder(run_dir, None, data_dir, cfg.session_gap_s)
    prepared = RunLayout(run_dir).ranking_prepared
    builder.save(prepared)
    events["train"].save(prepared / TRAIN_DIR)
    val = events["val"]
    if len(val) > cfg.val_max_rows:
        val = val.take(np.sort(np.random.default_rng(cfg.seed).choice(len(val), cfg.val_max_rows, replace=False)))
    val.save(prepared / VAL_DIR)
    return builder, events, prepared


def fingerprint(cfg: RankingConfig, run_dir: Path, data_dir: Path) -> str:
    """16-hex hash of what the trained models depend on: the preprocess outputs (manifest checksums), the
    retrieval embeddings, the raw data folder and the model config, but not the schedule (``epochs``,
    ``trainer``, ``torch_threads``) or the evaluation's ``ci_n_boot``, so a run continued with more epochs still
    resumes."""
    layout = RunLayout(run_dir)
    schedule = ("epochs", "trainer", "torch_threads", "ci_n_boot")
    model_cfg = {k: v for k, v in to_dict(cfg).items() if k not in schedule}
    parts = [json.dumps(model_cfg, sort_keys=True), str(data_dir),
             json.dumps(read_manifest(layout.preprocess).get("files", {}), sort_keys=True),
             sha256_file(layout.user_embeddings), sha256_file(layout.item_embeddings)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------------ train
def train_models(cfg: RankingConfig, prepared: Path, fingerprint: str, state: dict[str, Any] | None = None,
                 report: Report | None = None, rank: int = 0, world: int = 1,
                 wrap: Callable[[torch.nn.Module], torch.nn.Module] | None = None,
                 progress: bool = False) -> dict[str, Any]:
    """Step 2: train every model of ``cfg`` on ``prepared/`` with per-model early stopping; returns the last state.

    The one training loop, run in-process by :func:`train_local` and inside every Ray Train worker by
    ``jobs/train_ranker.py`` (which passes ``rank``/``world``, ``wrap`` = DDP ``prepare_model``, the resumed
    ``state`` and a ``report`` that checkpoints).

    Args:
        prepared: :func:`prepare`'s folder.
        fingerprint: :func:`fingerprint` of the inputs; a resumed ``state`` made from other inputs is refused.
        state: a state from an earlier (interrupted) run, or None.
        report: called after every epoch with the epoch's metrics and, every ``trainer.checkpoint_every`` epochs
            and at the end, the state.

    Returns:
        ``{"fingerprint", "epoch", "models", "optimizers", "stoppers", "best", "history", "hparams"}``.
    """
    notify = report or (lambda metrics, st: None)
    builder = FeatureBuilder.load(prepared)
    train, val = Events.load(prepared / TRAIN_DIR), Events.load(prepared / VAL_DIR)
    models = build_models(cfg, builder.dim, *builder.n_ids)
    fit_input_norms(models, builder, train, cfg.norm_sample_rows, cfg.seed)
    optimizers = {n: torch.optim.Adam(m.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
                  for n, m in models.items()}
    tc = cfg.trainer
    stoppers = {n: EarlyStopping(tc.early_stopping_patience, tc.min_delta) for n in models}
    best = {n: copy.deepcopy(m.state_dict()) for n, m in models.items()}
    history: list[dict[str, float]] = []
    start = 0
    if state is not None and state.get("fingerprint") != fingerprint:
        raise RuntimeError("the checkpoint of this Ray Train run was made from other inputs or another model config; "
                           "use another --name (the default name already differs per input)")
    if state is not None:  # resume
        for n, m in models.items():
            m.load_state_dict(state["models"][n])
            optimizers[n].load_state_dict(state["optimizers"][n])
            stoppers[n].load_state_dict(state["stoppers"][n])
        best, history, start = state["best"], state["history"], int(state["epoch"]) + 1
    wrapped = {n: wrap(m) for n, m in models.items()} if wrap is not None else dict(models)
    active = {n for n in models if not stoppers[n].should_stop}
    if state is not None and (not active or start >= cfg.epochs):
        # resumed a run that had already finished: report its checkpoint again so the result carries it
        notify(history[-1] if history else {"epoch": float(start - 1)}, state)
        return state
    last_state = state
    for epoch in range(start, cfg.epochs):
        if not active:
            break
        tr = train_epoch(wrapped, optimizers, builder, train, cfg, epoch, active, rank, world,
                         progress=progress and rank == 0)
        vs = validation_scores(predict(models, builder, val), val, cfg)
        for n in sorted(active):
            if stoppers[n].update(-vs[f"val_loss/{n}"]):
                best[n] = copy.deepcopy(models[n].state_dict())
        active = {n for n in active if not stoppers[n].should_stop}
        metrics = {"epoch": float(epoch), **tr, **vs,
                   "train_samples_per_s": tr["samples"] * world / max(tr["seconds"], 1e-9),
                   "active_models": float(len(active))}
        history.append(metrics)
        last = epoch == cfg.epochs - 1 or not active
        save = last or (epoch + 1) % tc.checkpoint_every == 0
        st = {"fingerprint": fingerprint, "epoch": epoch,
              "models": {n: m.state_dict() for n, m in models.items()},
              "optimizers": {n: o.state_dict() for n, o in optimizers.items()},
              "stoppers": {n: s.state_dict() for n, s in stoppers.items()}, "best": best,
              "history": history, "hparams": model_hparams(cfg, models)} if save else None
        last_state = st or last_state
        notify(metrics, st)
    if last_state is None:
        raise RuntimeError("training finished without a state")
    return last_state


def train_local(cfg: RankingConfig, prepared: Path, fingerprint: str) -> dict[str, Any]:
    """The default :data:`Train`: :func:`train_models` in this process (no Ray, no checkpoints)."""
    return train_models(cfg, prepared, fingerprint)


# -------------------------------------------------------------------------------------------- calibrate
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


def _p_true(data_dir: Path, run_dir: Path, events: Events) -> np.ndarray | None:
    """True click probabilities of ``events`` when ``data_dir`` is simulator data (has ground truth)."""
    from graphrec_ray.sources.simulator.ground_truth import GT_DIR, GroundTruth

    if not (data_dir / GT_DIR).is_dir():
        return None
    gt = GroundTruth.load(data_dir)
    threshold = float(read_manifest(RunLayout(run_dir).preprocess).get("config", {}).get("click_threshold", 0.5))
    return true_click_prob(lambda u, v: gt.p_watch_at_least(u, v, threshold), events.user_id, events.video_id)


# -------------------------------------------------------------------------------------------------- run
def run(cfg: RankingConfig, layout: RunLayout, train: Train | None = None) -> dict[str, Any]:
    """Train, calibrate and evaluate the ranker for ``layout``; write ``layout.ranking``; return a summary.

    Args:
        cfg: the stage config.
        layout: the run directory (reads ``preprocess/`` and ``retrieval/``, writes ``ranking/``).
        train: how the models are trained on the prepared folder (default :func:`train_local`; the job passes
            Ray Train's).

    Returns:
        ``{"metrics": rows of metrics.csv, "history", "feature_dim", "out_dir", "seconds", "calibrators",
        "calibrator_selection", "files", "fingerprint"}``.
    """
    train = train or train_local
    run_dir = layout.root.resolve()
    layout = RunLayout(run_dir)
    out = layout.ranking
    out.mkdir(parents=True, exist_ok=True)
    data_dir = resolve_data_dir(run_dir, cfg.data_dir).resolve()
    t0 = time.perf_counter()
    builder, events, prepared = prepare(cfg, run_dir, data_dir)
    t_prep = time.perf_counter() - t0
    n_rows = {s: len(e) for s, e in events.items()}
    skip_baselines = cfg.train_baselines and 0 < cfg.baselines_max_rows < n_rows["train"]
    if skip_baselines:  # decided once here, so the workers, the reload below and the fingerprint all agree
        cfg = dataclasses.replace(cfg, train_baselines=False)
    fp = fingerprint(cfg, run_dir, data_dir)
    del events["train"]  # the workers read it from prepared/; the driver needs only its row count
    state = train(cfg, prepared, fp)
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
    write_csv(rows, layout.ranking_metrics)
    layout.ranking_metrics_md.write_text(to_markdown(rows))
    layout.calibration_curves.write_text(json.dumps({"n_bins": cfg.ece_bins, "strategy": "equal_mass",
                                               "neg_sample_rate": cfg.neg_sample_rate, "panels": panels}) + "\n")
    plot_bin_panels(panels, layout.reliability_plot,
                    title=f"Ranker reliability, negatives kept at rate {cfg.neg_sample_rate:g}")
    hparams = state["hparams"]
    save_model(models["mmoe"], hparams["mmoe"], layout.ranker_model)
    calibrators["mmoe"][serving["mmoe"]].save(layout.calibrator)
    files = [p.name for p in (layout.ranker_model, layout.calibrator, out / FEATURE_SPEC_FILE, layout.ranking_metrics,
                              layout.ranking_metrics_md, layout.reliability_plot, layout.calibration_curves,
                              layout.ranking_history)]
    if "click" in models:
        torch.save({"hparams": {n: hparams[n] for n in ("click", "value")},
                    "state_dict": {n: models[n].state_dict() for n in ("click", "value")}}, layout.ranker_baselines)
        calibrators["single_task"][serving["single_task"]].save(layout.single_task_calibrator)
        files += [layout.ranker_baselines.name, layout.single_task_calibrator.name]
    builder.spec.save(out / FEATURE_SPEC_FILE)
    files += save_serving_tables(builder, out)  # serving reads these, never the raw side tables
    history = state["history"]
    layout.ranking_history.write_text(json.dumps(history, indent=1) + "\n")
    write_manifest(out, "ranking", config_hash(cfg), files,
                   extra={"data_dir": str(data_dir), "feature_dim": builder.dim, "fingerprint": fp,
                          "calibration": cfg.calibration, "serving_calibrator": serving,
                          "calibrator_selection_val_log_loss": selection, "neg_sample_rate": cfg.neg_sample_rate,
                          "epochs_run": len(history), "rows": n_rows,
                          "baselines_skipped": f"{n_rows['train']} training rows > baselines_max_rows "
                                               f"{cfg.baselines_max_rows}" if skip_baselines else None})
    return {"metrics": rows, "history": history, "feature_dim": builder.dim, "out_dir": str(out),
            "seconds": {"prepare": t_prep, "train": t_train, "total": time.perf_counter() - t0},
            "calibrators": {k: calibrators[k][v].to_dict() for k, v in serving.items()},
            "calibrator_selection": selection, "files": files, "fingerprint": fp}
