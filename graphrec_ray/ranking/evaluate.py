"""Ranking metrics table: click ROC-AUC, value MSE/RMSE, and per calibrator ECE (equal-mass and equal-width),
Brier and log-loss against the observed labels and, when the simulator's truth is known, against the TRUE click
probabilities.

One row per (model, calibrator, split). ``model`` is ``"mmoe"`` or ``"single_task"`` (the click MLP for the click
columns, the value MLP for the value columns); ``calibrator`` is ``"raw"`` (sigmoid of the logit),
``"downsampling"`` (the analytic correction for the training negative sampling rate), ``"platt"`` or
``"isotonic"`` (both fitted on validation); ``serving`` is 1 on the calibrator chosen (on validation) for serving.

With ``users`` given, every metric also gets its 95% interval (``<metric>/ci_low``, ``<metric>/ci_high``) from a
bootstrap over users (:class:`graphrec_ray.evaluation.cluster_bootstrap.UserBootstrap`: rows of one user move
together; ECE bins stay those of the full sample), and every calibrator other than ``raw`` gets paired differences
against the raw row (``log_loss_vs_raw`` etc., same users and draws): "better" only where that interval excludes 0.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Callable

import numpy as np

from graphrec_ray.calibration.metrics import LOG_LOSS_EPS, bin_ids, brier, ece, log_loss
from graphrec_ray.evaluation.cluster_bootstrap import UserBootstrap, auc_replicates, percentile_interval

#: Column order of ``metrics.csv`` / ``metrics.md`` (true_* columns only on simulator data).
COLUMNS = ("model", "calibrator", "split", "neg_sample_rate", "serving", "n", "auc", "mse", "rmse", "ece_mass",
           "ece_width", "brier", "log_loss", "true_ece_mass", "true_ece_width", "true_brier", "true_log_loss",
           "true_mae", "log_loss_vs_raw", "brier_vs_raw", "ece_mass_vs_raw", "true_log_loss_vs_raw",
           "true_brier_vs_raw", "true_ece_mass_vs_raw")

#: paired differences against the raw calibrator's row (same users, same bootstrap draws)
VS_RAW = ("log_loss", "brier", "ece_mass", "true_log_loss", "true_brier", "true_ece_mass")

#: metrics that carry an interval when users are given
CI_METRICS = ("auc", "mse", "rmse", "ece_mass", "ece_width", "brier", "log_loss", "true_ece_mass", "true_ece_width",
              "true_brier", "true_log_loss", "true_mae")

#: calibrators reported side by side, in table order
CALIBRATORS = ("raw", "downsampling", "platt", "isotonic")

PREDICTION_KEYS = {"mmoe": ("mmoe_logit", "mmoe_value"), "single_task": ("click_logit", "value_value")}


def metrics_rows(model: str, split: str, logit: np.ndarray, value: np.ndarray, label_click: np.ndarray,
                 label_value: np.ndarray, probs: dict[str, np.ndarray], n_bins: int = 15,
                 p_true: np.ndarray | None = None, extra: dict[str, Any] | None = None,
                 users: np.ndarray | None = None, n_boot: int = 1000, ci_seed: int = 0) -> list[dict[str, Any]]:
    """All metrics of one model on one split, one row per calibrator.

    Args:
        logit, value: ``(N,)`` raw click logits (only for the row count) and value predictions.
        label_click, label_value: ``(N,)`` labels.
        probs: ``{calibrator name: (N,) probabilities}`` (e.g. ``raw``, ``platt``, ...), in row order.
        n_bins: ECE bins (default 15).
        p_true: ``(N,)`` true click probabilities (simulator), or None.
        extra: constant columns added to every row (e.g. ``neg_sample_rate``, ``serving``).
        users: ``(N,)`` user of each row; when given, every metric gets a 95% bootstrap interval over users.
        n_boot: bootstrap replicates (default 1000); ci_seed: their seed (the same users are drawn for every
            calibrator, so intervals of two calibrators are comparable).
    """
    from sklearn.metrics import roc_auc_score

    y = np.asarray(label_click, dtype=np.float64)
    if y.shape != np.shape(logit):
        raise ValueError("logit and label_click must have the same length")
    mse = float(np.mean((np.asarray(value, np.float64) - np.asarray(label_value, np.float64)) ** 2))
    two_classes = np.unique(y).size == 2
    rows = []
    boot: UserBootstrap | None = None
    raw_row: dict[str, Any] | None = None
    raw_reps: dict[str, np.ndarray] = {}
    for name, p in probs.items():
        p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
        row: dict[str, Any] = {"model": model, "calibrator": name, "split": split, **(extra or {}),
                               "n": int(y.size), "auc": float(roc_auc_score(y, p)) if two_classes else float("nan"),
                               "mse": mse, "rmse": float(np.sqrt(mse)),
                               "ece_mass": ece(p, y, n_bins, "equal_mass"), "ece_width": ece(p, y, n_bins, "equal_width"),
                               "brier": brier(p, y), "log_loss": log_loss(p, y)}
        if p_true is not None:
            pt = np.asarray(p_true, dtype=np.float64)
            row.update(true_ece_mass=ece(p, pt, n_bins, "equal_mass"), true_ece_width=ece(p, pt, n_bins, "equal_width"),
                       true_brier=brier(p, pt), true_log_loss=log_loss(p, pt),
                       true_mae=float(np.mean(np.abs(p - pt))))
        if users is not None:
            boot = boot or UserBootstrap(users, n_boot, ci_seed)
            reps = _replicates(boot, p, y, np.asarray(value, np.float64), np.asarray(label_value, np.float64),
                               p_true, n_bins, two_classes)
            row.update(_intervals(row, reps, boot.n_users))
            if name == "raw":
                raw_row, raw_reps = row, reps
            elif raw_row is not None:
                for key in VS_RAW:
                    if key in row and key in raw_row:
                        iv = percentile_interval(row[key] - raw_row[key], reps[key] - raw_reps[key], n=boot.n_users)
                        row[f"{key}_vs_raw"] = iv.estimate
                        row[f"{key}_vs_raw/ci_low"], row[f"{key}_vs_raw/ci_high"] = iv.low, iv.high
        rows.append(row)
    return rows


def _replicates(boot: UserBootstrap, p: np.ndarray, y: np.ndarray, value: np.ndarray, label_value: np.ndarray,
                p_true: np.ndarray | None, n_bins: int, two_classes: bool) -> dict[str, np.ndarray]:
    """``{metric: (B,) bootstrap replicates}`` for :data:`CI_METRICS`."""
    pc = np.clip(p, LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS)

    def ll(t: np.ndarray) -> np.ndarray:
        return -(t * np.log(pc) + (1.0 - t) * np.log1p(-pc))

    targets = {"": y} if p_true is None else {"": y, "true_": np.asarray(p_true, dtype=np.float64)}
    cols = [np.ones_like(p), (value - label_value) ** 2]
    names = ["n", "mse"]
    for pre, t in targets.items():
        cols += [(p - t) ** 2, ll(t)]
        names += [f"{pre}brier", f"{pre}log_loss"]
        if pre:
            cols.append(np.abs(p - t))
            names.append("true_mae")
    sums = boot.replicate_sums(cols)
    n = sums[:, 0]
    reps = {name: sums[:, i] / n for i, name in enumerate(names) if name != "n"}
    reps["rmse"] = np.sqrt(reps["mse"])
    for strategy, key in (("equal_mass", "ece_mass"), ("equal_width", "ece_width")):
        ids = bin_ids(p, n_bins, strategy)  # bins of the full sample, kept in every replicate
        sp = boot.replicate_sums([p], ids, n_bins)
        for pre, t in targets.items():
            st = boot.replicate_sums([t], ids, n_bins)
            reps[f"{pre}{key}"] = np.abs(sp - st).sum(axis=1) / n
    if two_classes:
        reps["auc"] = auc_replicates(boot, p, y)
    return reps


def _intervals(row: dict[str, Any], reps: dict[str, np.ndarray], n_users: int) -> dict[str, float]:
    """``{metric/ci_low, metric/ci_high}`` for :data:`CI_METRICS` present in ``row``."""
    out: dict[str, float] = {}
    for key in CI_METRICS:
        if key in row and key in reps:
            iv = percentile_interval(float(row[key]), reps[key], n=n_users)
            out[f"{key}/ci_low"], out[f"{key}/ci_high"] = iv.low, iv.high
    return out


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    """:data:`COLUMNS` present in any row, each followed by its ``/ci_low``, ``/ci_high`` when present."""
    cols = []
    for c in COLUMNS:
        cols += [k for k in (c, f"{c}/ci_low", f"{c}/ci_high") if any(k in r for r in rows)]
    return cols


def write_csv(rows: list[dict[str, Any]], path: str | Path) -> None:
    """``metrics.csv`` with :data:`COLUMNS` (and their interval columns) present in any row (missing values empty)."""
    cols = _columns(rows)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in cols})


def to_markdown(rows: list[dict[str, Any]], title: str = "Ranking metrics") -> str:
    """A Markdown table of ``rows`` (floats with 4 decimals) with a one-line legend."""
    cols = [c for c in COLUMNS if any(c in r for r in rows)]

    def fmt(r: dict[str, Any], c: str) -> str:
        v = r.get(c, "")
        if not isinstance(v, float):
            return str(v)
        lo, hi = r.get(f"{c}/ci_low"), r.get(f"{c}/ci_high")
        return f"{v:.4f} [{lo:.4f}, {hi:.4f}]" if isinstance(lo, float) and isinstance(hi, float) else f"{v:.4f}"

    lines = [f"# {title}", "",
             "auc: click ROC-AUC; mse/rmse: value tower vs log1p(watch_ratio); ece_mass/ece_width: 15-bin ECE "
             "(equal-mass / equal-width bins), brier, log_loss: vs observed clicks; true_*: the same vs the "
             "simulator's true p(click). calibrator: raw sigmoid, analytic down-sampling correction, Platt, isotonic "
             "(fitted on validation); serving=1: the one chosen on validation for serving. [low, high]: 95% bootstrap "
             "interval over users.", "",
             "| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(fmt(r, c) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def true_click_prob(prob_fn: Callable[[np.ndarray, np.ndarray], np.ndarray], user_ids: np.ndarray,
                    video_ids: np.ndarray, chunk_users: int = 512) -> np.ndarray:
    """Per-event true click probability ``(N,)`` from a dense oracle ``prob_fn(users (U,), items (I,)) -> (U, I)``.

    Events are grouped by chunks of ``chunk_users`` distinct users so each oracle block stays small
    (e.g. ``GroundTruth.p_click`` of the simulator, on raw ids).
    """
    u = np.asarray(user_ids, dtype=np.int64)
    v = np.asarray(video_ids, dtype=np.int64)
    out = np.empty(u.size, dtype=np.float64)
    users = np.unique(u)
    for s in range(0, users.size, chunk_users):
        cu = users[s: s + chunk_users]
        rows = np.flatnonzero(np.isin(u, cu))
        ci = np.unique(v[rows])
        block = prob_fn(cu, ci)
        out[rows] = block[np.searchsorted(cu, u[rows]), np.searchsorted(ci, v[rows])]
    return out
