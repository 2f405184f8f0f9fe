"""Training labels from the raw watch ratio.

``label_click = 1[watch_ratio >= click_threshold]`` (KuaiRec convention, threshold 0.5) and
``label_value = log1p(min(watch_ratio, value_clip))`` (the clip tames the looping-play outliers above 5).
"""

from __future__ import annotations

import numpy as np


def make_labels(watch_ratio: np.ndarray, click_threshold: float = 0.5,
                value_clip: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    """Labels for ``(n,)`` non-negative watch ratios.

    Args:
        watch_ratio: ``(n,)`` float64, raw (unclipped) play / video duration.
        click_threshold: a view is a click when ``watch_ratio >= click_threshold`` (default 0.5).
        value_clip: watch ratios above this are clipped before ``log1p`` (default 5.0).

    Returns:
        ``(label_click, label_value)``: ``(n,)`` int8 in {0, 1} and ``(n,)`` float32 in ``[0, log1p(value_clip)]``.
    """
    wr = np.asarray(watch_ratio, dtype=np.float64)
    click = (wr >= click_threshold).astype(np.int8)
    value = np.log1p(np.minimum(wr, value_clip)).astype(np.float32)
    return click, value
