"""Ranking metrics table: click ROC-AUC, value MSE/RMSE, and per calibrator ECE (equal-mass and equal-width),
Brier and log-loss against the observed labels and, when the simulator's truth is known, against the TRUE click
probabilities.

One row per (model, calibrator, split). ``model`` is ``"mmoe"`` or ``"single_task"`` (the click MLP for the click
columns, the value MLP for the value columns); ``calibrator`` is ``"raw"`` (sigmoid of the logit),
``"downsampling"`` (the analytic correction for the training negative sampling rate), ``"platt"`` or
``"isotonic"`` (both fitted on validation); ``serving`` is 1 on the calibrator chosen (on validation) for serving.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Callable

import numpy as np

from graphrec_ray.calibration.metrics import brier, ece, log_loss

#: Column order of ``metrics.csv`` / ``metrics.md`` (true_* columns only on simulator data).
COLUMNS = ("model", "calibrator", "split", "neg_sample_rate", "serving", "n", "auc", "mse", "rmse", "ece_mass",
           "ece_width", "brier", "log_loss", "true_ece_mass", "true_ece_width", "true_brier", "true_log_loss",
           "true_mae")

#: calibrators reported side by side, in table order
CALIBRATORS = ("raw", "downsampling", "platt", "isotonic")

PREDICTION_KEYS = {"mmoe": ("mmoe_logit", "mmoe_value"), "single_task": ("click_logit", "value_value")}


def metrics_rows(model: str, split: str, logit: np.ndarray, value: np.ndarray, label_click: np.ndarray,
                 label_value: np.ndarray, probs: dict[str, np.ndarray], n_bins: int = 15,
                 p_true: np.ndarray | None = None, extra: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """All metrics of one model on one split, one row per calibrator.

    Args:
        logit, value: ``(N,)`` raw click logits (only for the row count) and value predictions.
        label_click, label_value: ``(N,)`` labels.
        probs: ``{calibrator name: (N,) probabilities}`` (e.g. ``raw``, ``platt``, ...), in row order.
        n_bins: ECE bins (default 15).
        p_true: ``(N,)`` true click probabilities (simulator), or None.
        extra: constant columns added to every row (e.g. ``neg_sample_rate``, ``serving``).
    """
    from sklearn.metrics import roc_auc_score

    y = np.asarray(label_click, dtype=np.float64)
    if y.shape != np.shape(logit):
        raise ValueError("logit and label_click must have the same length")
    mse = float(np.mean((np.asarray(value, np.float64) - np.asarray(label_value, np.float64)) ** 2))
    two_classes = np.unique(y).size == 2
    rows = []
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
        rows.append(row)
    return rows


def write_csv(rows: list[dict[str, Any]], path: str | Path) -> None:
    """``metrics.csv`` with :data:`COLUMNS` present in any row (missing values empty)."""
    cols = [c for c in COLUMNS if any(c in r for r in rows)]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in cols})


def to_markdown(rows: list[dict[str, Any]], title: str = "Ranking metrics") -> str:
    """A Markdown table of ``rows`` (floats with 4 decimals) with a one-line legend."""
    cols = [c for c in COLUMNS if any(c in r for r in rows)]

    def fmt(v: Any) -> str:
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    lines = [f"# {title}", "",
             "auc: click ROC-AUC; mse/rmse: value tower vs log1p(watch_ratio); ece_mass/ece_width: 15-bin ECE "
             "(equal-mass / equal-width bins), brier, log_loss: vs observed clicks; true_*: the same vs the "
             "simulator's true p(click). calibrator: raw sigmoid, analytic down-sampling correction, Platt, isotonic "
             "(fitted on validation); serving=1: the one chosen on validation for serving.", "",
             "| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
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
