"""Isotonic calibration (option): a monotone step map from raw probability to calibrated probability.

Zadrozny & Elkan, KDD 2002. Fitted with scikit-learn's ``IsotonicRegression`` on
``sigmoid(logit)``; only the breakpoints are kept, and prediction is ``np.interp`` over them, so
the saved JSON is all serving needs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graphrec_ray.calibration.platt import sigmoid


@dataclass(frozen=True)
class IsotonicCalibrator:
    """Piecewise-linear monotone map through ``(x_thresholds, y_thresholds)`` (raw prob -> calibrated prob).

    Attributes:
        x: ``(m,)`` increasing raw-probability breakpoints.
        y: ``(m,)`` non-decreasing calibrated probabilities at ``x``.
    """

    x: np.ndarray = field(default_factory=lambda: np.array([0.0, 1.0]))
    y: np.ndarray = field(default_factory=lambda: np.array([0.0, 1.0]))
    method = "isotonic"

    @classmethod
    def fit(cls, logits: np.ndarray, labels: np.ndarray) -> "IsotonicCalibrator":
        """Fit on ``(N,)`` raw logits and ``(N,)`` 0/1 labels."""
        from sklearn.isotonic import IsotonicRegression

        p = sigmoid(np.asarray(logits, dtype=np.float64).ravel())
        y = np.asarray(labels, dtype=np.float64).ravel()
        if p.shape != y.shape:
            raise ValueError("logits and labels must have the same length")
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
        return cls(x=np.asarray(iso.X_thresholds_, dtype=np.float64), y=np.asarray(iso.y_thresholds_, dtype=np.float64))

    def predict(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities ``(N,)`` float64 (constant beyond the outer breakpoints)."""
        return np.interp(sigmoid(logits), self.x, self.y)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "x": self.x.tolist(), "y": self.y.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "IsotonicCalibrator":
        if d.get("method") != cls.method:
            raise ValueError(f"not an isotonic calibrator: method={d.get('method')!r}")
        return cls(x=np.asarray(d["x"], dtype=np.float64), y=np.asarray(d["y"], dtype=np.float64))

    def save(self, path: str | Path) -> None:
        """Write JSON ``{"method": "isotonic", "x": [...], "y": [...]}``."""
        Path(path).write_text(json.dumps(self.to_dict()) + "\n")
