"""Analytic correction of a click model trained on negative-down-sampled data.

Training on all positives and a fraction ``w`` of the negatives (each kept with probability ``w``, as CTR models
are trained at scale) multiplies the odds the model learns by ``1 / w``: a model that is calibrated on the
sampled data predicts ``q = p / (p + w (1 - p))`` for a true probability ``p``. Inverting,

.. math::
    p = \\frac{q}{q + (1 - q) / w}, \\qquad \\mathrm{logit}(p) = \\mathrm{logit}(q) + \\log w,

(He et al., "Practical lessons from predicting clicks on ads at Facebook", ADKDD 2014, section 6.3). The
correction is exact only when the sampled model is itself calibrated; Platt or isotonic scaling fitted on
unsampled validation data also absorbs the model's own miscalibration.

Example::

    >>> round(float(correct_downsampling(np.array([0.5]), 0.1)[0]), 4)  # odds 1 -> 0.1
    0.0909
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from graphrec_ray.calibration.platt import sigmoid


def _check_rate(rate: float) -> float:
    rate = float(rate)
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"negative sampling rate must be in (0, 1], got {rate}")
    return rate


def correct_downsampling(probs: np.ndarray, rate: float) -> np.ndarray:
    """``p = q / (q + (1 - q) / rate)`` for ``(N,)`` probabilities ``q`` of a model trained with negatives kept
    at ``rate`` in ``(0, 1]`` (1 = no change); ``(N,)`` float64."""
    w = _check_rate(rate)
    q = np.clip(np.asarray(probs, dtype=np.float64), 0.0, 1.0)
    return q / np.maximum(q + (1.0 - q) / w, 1e-300)


@dataclass(frozen=True)
class DownsamplingCalibrator:
    """``p = sigmoid(logit + log(rate))``: the analytic inverse of negative down-sampling, nothing fitted.

    Attributes:
        rate: fraction of negatives kept at training, in ``(0, 1]`` (1.0: identity, the raw model).
    """

    rate: float = 1.0
    method = "downsampling"

    def __post_init__(self) -> None:
        _check_rate(self.rate)

    def predict(self, logits: np.ndarray) -> np.ndarray:
        """Corrected probabilities ``(N,)`` float64."""
        return sigmoid(np.asarray(logits, dtype=np.float64) + np.log(self.rate))

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "rate": self.rate}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DownsamplingCalibrator":
        if d.get("method") != cls.method:
            raise ValueError(f"not a down-sampling calibrator: method={d.get('method')!r}")
        return cls(rate=float(d["rate"]))

    def save(self, path: str | Path) -> None:
        """Write JSON ``{"method": "downsampling", "rate": ...}``."""
        Path(path).write_text(json.dumps(self.to_dict()) + "\n")
