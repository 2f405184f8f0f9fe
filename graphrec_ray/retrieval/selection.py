"""Model selection on validation points: which optimiser step to refit for, and when to stop looking.

The selected step is the best *plain* validation metric (Recall@20 on held-out validation positives by default)
among validation points at or after ``min_steps``. IPS-weighted validation metrics are reported but not selected
on: a few rare items with weights near the clip dominate them, so they jump between neighbouring points, and on
real data they picked epoch 1 of a model whose quality kept rising until epoch 60 (issue 10). ``min_steps`` keeps
both early stopping and selection away from the first, barely trained points.
"""

from __future__ import annotations

import math
from typing import Sequence


def select_step(steps: Sequence[int], values: Sequence[float], min_steps: int = 0,
                min_delta: float = 0.0) -> int:
    """Step of the best validation value among points with ``step >= min_steps``.

    Args:
        steps: ``(P,)`` optimiser steps of the validation points, increasing.
        values: ``(P,)`` validation metric (higher is better); NaN points are skipped.
        min_steps: points before this step are never chosen (default 0); when no point reaches it, the last point
            is chosen (the longest training seen).
        min_delta: a later point must beat the best so far by more than this to replace it (default 0).

    Returns:
        The chosen step.

    Example::

        >>> select_step([10, 20, 30, 40], [0.30, 0.10, 0.20, 0.25], min_steps=15)
        40
    """
    if len(steps) != len(values) or not len(steps):
        raise ValueError("need one value per step and at least one point")
    best_step, best = None, -math.inf
    for s, v in zip(steps, values):
        if s < min_steps or not math.isfinite(v):
            continue
        if v > best + min_delta:
            best_step, best = int(s), float(v)
    return int(steps[-1]) if best_step is None else best_step


def should_stop(steps: Sequence[int], values: Sequence[float], min_steps: int, patience: int,
                min_delta: float = 1e-4) -> bool:
    """Early stopping: at least ``min_steps`` done and ``patience`` points since the selected one.

    Args:
        steps, values: validation points so far (see :func:`select_step`).
        min_steps: never stop before this step.
        patience: validation points without improvement (over ``min_delta``) before stopping; 0 = never stop.
    """
    if patience <= 0 or not len(steps) or steps[-1] < min_steps:
        return False
    best = select_step(steps, values, min_steps, min_delta)
    after = sum(1 for s in steps if s > best)
    return after >= patience
