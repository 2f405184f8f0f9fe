"""Platt scaling: ``p = sigmoid(a * logit + b)`` fitted on held-out (validation) logits.

Platt, "Probabilistic outputs for support vector machines", 1999. The two parameters are the
coefficient and intercept of an (unregularised) scikit-learn ``LogisticRegression`` on the single
feature ``logit``. If the raw model is already calibrated, ``a = 1, b = 0``.

Example::

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=50_000)
    >>> y = rng.random(50_000) < 1 / (1 + np.exp(-(0.5 * z - 1.0)))
    >>> cal = PlattCalibrator.fit(z, y)
    >>> round(cal.a, 1), round(cal.b, 1)
    (0.5, -1.0)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function, same shape and float dtype as ``z``."""
    z = np.asarray(z, dtype=np.float64)
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


@dataclass(frozen=True)
class PlattCalibrator:
    """``p = sigmoid(a * logit + b)``.

    Attributes:
        a: slope on the raw logit (1.0: no change of sharpness).
        b: intercept (0.0: no shift).
    """

    a: float = 1.0
    b: float = 0.0
    method = "platt"

    @classmethod
    def fit(cls, logits: np.ndarray, labels: np.ndarray, max_samples: int = 1_000_000,
            seed: int = 0) -> "PlattCalibrator":
        """Fit on ``(N,)`` raw logits and ``(N,)`` 0/1 labels (at most ``max_samples`` rows, drawn with ``seed``).

        Raises:
            ValueError: when the labels hold only one class.
        """
        from sklearn.linear_model import LogisticRegression

        z = np.asarray(logits, dtype=np.float64).ravel()
        y = np.asarray(labels).ravel().astype(np.int64)
        if z.shape != y.shape:
            raise ValueError("logits and labels must have the same length")
        if np.unique(y).size < 2:
            raise ValueError("Platt scaling needs both classes in the labels")
        if z.size > max_samples:
            pick = np.random.default_rng(seed).choice(z.size, max_samples, replace=False)
            z, y = z[pick], y[pick]
        lr = LogisticRegression(C=np.inf, solver="lbfgs", max_iter=1000)
        lr.fit(z[:, None], y)
        return cls(a=float(lr.coef_[0, 0]), b=float(lr.intercept_[0]))

    def predict_logit(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated logits ``a * z + b``, ``(N,)`` float64."""
        return self.a * np.asarray(logits, dtype=np.float64) + self.b

    def predict(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities ``(N,)`` float64 in ``[0, 1]``."""
        return sigmoid(self.predict_logit(logits))

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "a": self.a, "b": self.b}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PlattCalibrator":
        if d.get("method") != cls.method:
            raise ValueError(f"not a Platt calibrator: method={d.get('method')!r}")
        return cls(a=float(d["a"]), b=float(d["b"]))

    def save(self, path: str | Path) -> None:
        """Write JSON ``{"method": "platt", "a": ..., "b": ...}``."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")
