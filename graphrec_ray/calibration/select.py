"""Choose the serving calibrator on validation data only, by cross-fitted log-loss.

Each candidate method is fitted on one half of the validation rows and scored (log-loss, a proper scoring rule)
on the other half, and the other way round; the method with the lowest mean held-out log-loss wins and is refitted
on all validation rows. Scoring a calibrator on the rows it was fitted on would favour isotonic regression, which
can memorise them; the test split is never looked at.
"""

from __future__ import annotations

import numpy as np

from graphrec_ray.calibration.factory import METHODS, Calibrator, fit_calibrator
from graphrec_ray.calibration.metrics import log_loss

N_FOLDS = 2  # two halves: each fit sees half the validation rows, enough for two Platt parameters or isotonic steps


def cross_fitted_log_loss(method: str, logits: np.ndarray, labels: np.ndarray, neg_sample_rate: float = 1.0,
                          seed: int = 0, n_folds: int = N_FOLDS) -> float:
    """Mean held-out log-loss of ``method`` over ``n_folds`` seeded folds of ``(N,)`` logits and 0/1 labels."""
    z = np.asarray(logits, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=np.float64).ravel()
    fold = np.random.default_rng(seed).permutation(z.size) % n_folds
    losses = []
    for k in range(n_folds):
        fit_rows, held = fold != k, fold == k
        cal = fit_calibrator(method, z[fit_rows], y[fit_rows], neg_sample_rate)  # type: ignore[arg-type]
        losses.append(log_loss(np.clip(cal.predict(z[held]), 0.0, 1.0), y[held]))
    return float(np.mean(losses))


def select_calibrator(logits: np.ndarray, labels: np.ndarray, neg_sample_rate: float = 1.0,
                      methods: tuple[str, ...] = METHODS, seed: int = 0) -> tuple[Calibrator, dict[str, float]]:
    """Pick the method of ``methods`` with the lowest cross-fitted validation log-loss; refit it on all rows.

    Args:
        logits, labels: ``(N,)`` validation logits and 0/1 labels (unsampled data).
        neg_sample_rate: rate the model's training negatives were kept at (for ``"downsampling"``; 1.0 makes it
            the identity, i.e. the raw model).
        methods: candidates (default platt, isotonic, downsampling); ties go to the earlier one.
        seed: fold assignment.

    Returns:
        ``(calibrator, {method: held-out log-loss})``.
    """
    if not methods:
        raise ValueError("no calibration method to choose from")
    scores = {m: cross_fitted_log_loss(m, logits, labels, neg_sample_rate, seed) for m in methods}
    best = min(methods, key=lambda m: (scores[m], methods.index(m)))
    return fit_calibrator(best, logits, labels, neg_sample_rate), scores  # type: ignore[arg-type]
