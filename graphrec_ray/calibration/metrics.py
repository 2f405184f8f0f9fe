"""Calibration metrics: expected calibration error (equal-mass / equal-width bins), Brier score and log-loss.

``targets`` may be 0/1 labels or true probabilities in ``[0, 1]`` (simulator ground truth): with
true probabilities, :func:`ece` measures the distance of predictions from the *true* click
probability instead of from noisy labels.

Example::

    >>> import numpy as np
    >>> p = np.array([0.1, 0.1, 0.9, 0.9]); y = np.array([0, 1, 1, 1])
    >>> round(brier(p, y), 4)  # ((0.1)^2 + 0.9^2 + 0.1^2 + 0.1^2) / 4
    0.21
    >>> round(ece(p, y, n_bins=2, strategy="equal_width"), 4)  # 0.5*|0.1-0.5| + 0.5*|0.9-1|
    0.25
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Strategy = Literal["equal_mass", "equal_width"]


@dataclass(frozen=True)
class ReliabilityBins:
    """Per-bin summary used by ECE and the reliability diagram; empty bins are dropped.

    Attributes:
        mean_pred: ``(n,)`` mean predicted probability per bin.
        mean_target: ``(n,)`` mean label (observed frequency) or mean true probability per bin.
        count: ``(n,)`` samples per bin.
    """

    mean_pred: np.ndarray
    mean_target: np.ndarray
    count: np.ndarray


def _check(probs: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probs, dtype=np.float64).ravel()
    t = np.asarray(targets, dtype=np.float64).ravel()
    if p.shape != t.shape:
        raise ValueError(f"probs and targets must have the same length, got {p.size} and {t.size}")
    if p.size == 0:
        raise ValueError("empty input")
    if np.any((p < 0) | (p > 1)) or np.any((t < 0) | (t > 1)):
        raise ValueError("probs and targets must lie in [0, 1]")
    return p, t


def reliability_bins(probs: np.ndarray, targets: np.ndarray, n_bins: int = 15,
                     strategy: Strategy = "equal_mass") -> ReliabilityBins:
    """Group predictions into ``n_bins`` bins (default 15).

    ``equal_width`` bins split ``[0, 1]`` into equal intervals (the last one closed);
    ``equal_mass`` bins hold (almost) the same number of samples: predictions are sorted and cut
    into ``n_bins`` contiguous chunks of sizes differing by at most one (ties may straddle a cut).
    """
    p, t = _check(probs, targets)
    ids = bin_ids(p, n_bins, strategy)
    count = np.bincount(ids, minlength=n_bins).astype(np.int64)
    sum_p = np.bincount(ids, weights=p, minlength=n_bins)
    sum_t = np.bincount(ids, weights=t, minlength=n_bins)
    keep = count > 0
    return ReliabilityBins(sum_p[keep] / count[keep], sum_t[keep] / count[keep], count[keep])


def bin_ids(probs: np.ndarray, n_bins: int = 15, strategy: Strategy = "equal_mass") -> np.ndarray:
    """``(N,)`` int64 bin of each prediction in ``0..n_bins-1`` (see :func:`reliability_bins`)."""
    p = np.asarray(probs, dtype=np.float64).ravel()
    if n_bins < 1:
        raise ValueError("n_bins must be >= 1")
    if strategy == "equal_width":
        return np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    if strategy == "equal_mass":
        order = np.argsort(p, kind="stable")
        ids = np.empty(p.size, dtype=np.int64)
        ids[order] = (np.arange(p.size) * n_bins) // max(p.size, 1)
        return ids
    raise ValueError(f"unknown strategy {strategy!r}")


def ece(probs: np.ndarray, targets: np.ndarray, n_bins: int = 15, strategy: Strategy = "equal_mass") -> float:
    """Expected calibration error: ``sum_b (n_b / N) * |mean_pred_b - mean_target_b|``.

    Args:
        probs: ``(N,)`` predicted probabilities.
        targets: ``(N,)`` 0/1 labels or true probabilities.
        n_bins: number of bins (default 15).
        strategy: ``"equal_mass"`` (default) or ``"equal_width"``.
    """
    b = reliability_bins(probs, targets, n_bins, strategy)
    return float(np.sum(b.count * np.abs(b.mean_pred - b.mean_target)) / np.sum(b.count))


def brier(probs: np.ndarray, targets: np.ndarray) -> float:
    """Brier score ``mean((p - y)^2)`` for ``(N,)`` probabilities and 0/1 labels (or true probabilities)."""
    p, t = _check(probs, targets)
    return float(np.mean((p - t) ** 2))


LOG_LOSS_EPS = 1e-6  # probabilities are clipped to [eps, 1 - eps]: an exact 0/1 (isotonic ends) costs ~13.8 nats


def log_loss(probs: np.ndarray, targets: np.ndarray, eps: float = LOG_LOSS_EPS) -> float:
    """Mean cross-entropy ``-mean(t log p + (1 - t) log(1 - p))`` in nats.

    Args:
        probs: ``(N,)`` predicted probabilities (clipped to ``[eps, 1 - eps]``, default eps 1e-6).
        targets: ``(N,)`` 0/1 labels, or true probabilities (then it is the cross-entropy against the true
            Bernoulli, whose minimum over ``probs`` is the true probabilities' entropy).
    """
    p, t = _check(probs, targets)
    p = np.clip(p, eps, 1.0 - eps)
    return float(-np.mean(t * np.log(p) + (1.0 - t) * np.log1p(-p)))
