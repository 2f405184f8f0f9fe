"""Ranking metrics table: click ROC-AUC, value MSE/RMSE, ECE (equal-mass and equal-width) and Brier
before and after calibration, and, when the simulator's truth is known, the distance of the
predicted probabilities from the TRUE click probabilities.

One row per (model, split); ``model`` is ``"mmoe"`` or ``"single_task"`` (the click MLP for the
click columns, the value MLP for the value columns).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Callable

import numpy as np

from graphrec_ray.calibration.metrics import brier, ece
from graphrec_ray.calibration.platt import sigmoid

#: Column order of ``metrics.csv`` / ``metrics.md`` (true_* columns only on simulator data).
COLUMNS = ("model", "split", "n", "auc", "mse", "rmse", "ece_mass_raw", "ece_mass_cal", "ece_width_raw",
           "ece_width_cal", "brier_raw", "brier_cal", "true_mae_raw", "true_mae_cal", "true_ece_raw",
           "true_ece_cal")

PREDICTION_KEYS = {"mmoe": ("mmoe_logit", "mmoe_value"), "single_task": ("click_logit", "value_value")}


def metrics_row(model: str, split: str, logit: np.ndarray, value: np.ndarray, label_click: np.ndarray,
                label_value: np.ndarray, calibrate: Callable[[np.ndarray], np.ndarray], n_bins: int = 15,
                p_true: np.ndarray | None = None) -> dict[str, Any]:
    """All metrics of one model on one split.

    Args:
        logit, value: ``(N,)`` raw click logits and value predictions.
        label_click, label_value: ``(N,)`` labels.
        calibrate: maps raw logits to calibrated probabilities (fitted on validation).
        n_bins: ECE bins (default 15).
        p_true: ``(N,)`` true click probabilities (simulator), or None.
    """
    from sklearn.metrics import roc_auc_score

    y = np.asarray(label_click, dtype=np.float64)
    raw = sigmoid(logit)
    cal = np.clip(calibrate(logit), 0.0, 1.0)
    mse = float(np.mean((np.asarray(value, np.float64) - np.asarray(label_value, np.float64)) ** 2))
    row: dict[str, Any] = {
        "model": model, "split": split, "n": int(y.size),
        "auc": float(roc_auc_score(y, logit)) if np.unique(y).size == 2 else float("nan"),
        "mse": mse, "rmse": float(np.sqrt(mse)),
        "ece_mass_raw": ece(raw, y, n_bins, "equal_mass"), "ece_mass_cal": ece(cal, y, n_bins, "equal_mass"),
        "ece_width_raw": ece(raw, y, n_bins, "equal_width"), "ece_width_cal": ece(cal, y, n_bins, "equal_width"),
        "brier_raw": brier(raw, y), "brier_cal": brier(cal, y),
    }
    if p_true is not None:
        pt = np.asarray(p_true, dtype=np.float64)
        row.update(true_mae_raw=float(np.mean(np.abs(raw - pt))), true_mae_cal=float(np.mean(np.abs(cal - pt))),
                   true_ece_raw=ece(raw, pt, n_bins, "equal_mass"), true_ece_cal=ece(cal, pt, n_bins, "equal_mass"))
    return row


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
             "AUC: click ROC-AUC; mse/rmse: value tower vs log1p(watch_ratio); ece_*: 15-bin ECE (equal-mass / "
             "equal-width), raw vs calibrated on validation; true_*: vs the simulator's true p(click).", "",
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
