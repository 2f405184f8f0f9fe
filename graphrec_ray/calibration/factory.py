"""Choose, fit and load a calibrator by name (``calibrator.json`` names its method)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from graphrec_ray.calibration.downsampling import DownsamplingCalibrator
from graphrec_ray.calibration.isotonic import IsotonicCalibrator
from graphrec_ray.calibration.platt import PlattCalibrator

Method = Literal["platt", "isotonic", "downsampling"]
METHODS: tuple[str, ...] = ("platt", "isotonic", "downsampling")


class Calibrator(Protocol):
    """Maps raw click logits ``(N,)`` to calibrated probabilities ``(N,)``."""

    method: str

    def predict(self, logits: np.ndarray) -> np.ndarray: ...

    def to_dict(self) -> dict[str, Any]: ...

    def save(self, path: str | Path) -> None: ...


def fit_calibrator(method: Method, logits: np.ndarray, labels: np.ndarray,
                   neg_sample_rate: float = 1.0) -> Calibrator:
    """Fit ``method`` on ``(N,)`` validation logits and 0/1 labels.

    ``"platt"`` and ``"isotonic"`` are fitted; ``"downsampling"`` is the analytic correction for a model trained
    with negatives kept at ``neg_sample_rate`` (default 1.0 = identity) and ignores the data.
    """
    if method == "downsampling":
        return DownsamplingCalibrator(neg_sample_rate)
    if method == "platt":
        return PlattCalibrator.fit(logits, labels)
    if method == "isotonic":
        return IsotonicCalibrator.fit(logits, labels)
    raise ValueError(f"unknown calibration method {method!r}")


def calibrator_from_dict(d: dict[str, Any]) -> Calibrator:
    """Rebuild a calibrator from its ``to_dict()`` form."""
    method = d.get("method")
    if method == "platt":
        return PlattCalibrator.from_dict(d)
    if method == "isotonic":
        return IsotonicCalibrator.from_dict(d)
    if method == "downsampling":
        return DownsamplingCalibrator.from_dict(d)
    raise ValueError(f"unknown calibration method {method!r}")


def load_calibrator(path: str | Path) -> Calibrator:
    """Read ``calibrator.json`` written by ``Calibrator.save``."""
    return calibrator_from_dict(json.loads(Path(path).read_text()))
