"""Training schedule shared by the retrieval and ranking trainers: scaling, checkpoints, early stopping, and the
budget in optimiser steps.

Plain Python: the Ray Train wiring that consumes :class:`TrainerConfig` lives in ``jobs/ray_train.py``.

The budget is counted in optimiser steps of one *global* batch, never in per-worker epochs: the global batch is
fixed and each of ``W`` workers takes its ``1/W`` slice of it (:func:`worker_slice`), so the same data gives the
same number of optimiser steps, each over the same samples, whatever the worker count (:func:`step_budget`).

With full-graph propagation in every step (LightGCN), a step costs time in proportion to the edge count, so a fixed
batch makes a pass over the edges cost ``edges / batch`` propagations and the whole budget grow with the square of
the data. :func:`global_batch` lets the batch grow with the data instead (``steps_per_epoch``): a pass then costs at
most that many steps and the budget stops growing, so total training time grows linearly with the edges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class TrainerConfig:
    """How a model is trained on Ray Train (nested as ``trainer:`` in a stage config)."""

    num_workers: int = 1  # DDP workers; 0 = Ray Train local mode (in-process, for fast tests)
    use_gpu: bool = False  # one GPU per worker when true
    cpus_per_worker: float = 1.0  # CPU reservation per worker; fractional lets 2 workers share a 2-core laptop
    max_failures: int = 2  # FailureConfig: how often a killed worker group is restarted from the last checkpoint
    checkpoint_every: int = 1  # epochs between checkpoints (the last epoch is always checkpointed)
    num_to_keep: int = 2  # checkpoints kept on disk
    early_stopping_patience: int = 3  # epochs without validation improvement before stopping; 0 = never stop early
    min_delta: float = 1e-4  # smallest improvement of the monitored metric that counts

    def __post_init__(self) -> None:
        if self.num_workers < 0:
            raise ValueError("num_workers must be >= 0")
        if self.checkpoint_every < 1 or self.num_to_keep < 1:
            raise ValueError("checkpoint_every and num_to_keep must be >= 1")


@dataclass(frozen=True)
class StepBudget:
    """How many optimiser steps a run takes and how often it is validated (see :func:`step_budget`).

    Attributes:
        global_batch: samples per optimiser step over all workers (``min(batch_size, n_samples)``).
        steps_per_epoch: full global batches in one pass over the data (the last partial batch is dropped).
        total_steps: the budget.
        eval_every: optimiser steps between validation points.
        min_steps: early stopping may not stop, and selection may not choose, before this many steps.
    """

    global_batch: int
    steps_per_epoch: int
    total_steps: int
    eval_every: int
    min_steps: int

    def eval_points(self) -> list[int]:
        """Step counts at which validation runs: every ``eval_every`` steps, and always at ``total_steps``."""
        pts = list(range(self.eval_every, self.total_steps + 1, self.eval_every))
        if not pts or pts[-1] != self.total_steps:
            pts.append(self.total_steps)
        return pts


def global_batch(n_samples: int, batch_size: int, steps_per_epoch: int = 0) -> int:
    """Samples per optimiser step over all workers: ``batch_size``, or more when a pass would take more than
    ``steps_per_epoch`` steps; never more than ``n_samples``.

    ``max(batch_size, ceil(n_samples / steps_per_epoch))`` clamped to ``n_samples`` (``steps_per_epoch = 0``: plain
    ``min(batch_size, n_samples)``). Depends on the data size only, never on the worker count.

    Example::

        >>> global_batch(10_000, 1024), global_batch(10_000, 1024, steps_per_epoch=4), global_batch(100, 1024, 4)
        (1024, 2500, 100)
    """
    if n_samples < 1 or batch_size < 1 or steps_per_epoch < 0:
        raise ValueError(f"need n_samples >= 1, batch_size >= 1, steps_per_epoch >= 0; got {n_samples}, "
                         f"{batch_size}, {steps_per_epoch}")
    g = int(batch_size)
    if steps_per_epoch > 0:
        g = max(g, -(-int(n_samples) // int(steps_per_epoch)))
    return min(g, int(n_samples))


def step_budget(n_samples: int, batch_size: int, epochs: float, min_steps: int = 0, max_steps: int = 0,
                max_evals: int = 50, steps_per_epoch: int = 0) -> StepBudget:
    """``total_steps = max(min_steps, round(epochs * n_samples / global_batch))``, capped at ``max_steps``.

    Depends only on the data size and the global batch, never on the number of workers, so a run on 1, 2 or 8
    workers takes the same optimiser steps over the same samples. With ``steps_per_epoch > 0`` the global batch
    grows with the data (:func:`global_batch`), so the budget is at most about ``epochs * steps_per_epoch`` steps
    whatever the data size.

    Args:
        n_samples: training samples (e.g. positive edges), ``>= 1``.
        batch_size: global batch (all workers together); clamped to ``n_samples``; with ``steps_per_epoch`` its
            lower bound.
        epochs: passes over the data the budget is worth (may be fractional).
        min_steps: lower bound of the budget (default 0), and the first step at which early stopping may stop.
        max_steps: upper bound (default 0 = none); wins over ``min_steps``.
        max_evals: at most about this many validation points (default 50): ``eval_every`` is one epoch or
            ``total_steps / max_evals``, whichever is longer.
        steps_per_epoch: most optimiser steps per pass over the data (default 0 = no limit: the batch is
            ``batch_size``); see :func:`global_batch`.

    Example::

        >>> b = step_budget(10_000, 1024, epochs=4.0, min_steps=100)
        >>> b.steps_per_epoch, b.total_steps, b.eval_every
        (9, 100, 9)
        >>> b = step_budget(1_000_000, 1024, epochs=4.0, steps_per_epoch=25)
        >>> b.global_batch, b.steps_per_epoch, b.total_steps
        (40000, 25, 100)
    """
    g = global_batch(n_samples, batch_size, steps_per_epoch)
    per_epoch = n_samples // g
    total = max(int(min_steps), int(round(epochs * n_samples / g)), 1)
    if max_steps > 0:
        total = min(total, int(max_steps))
    every = max(per_epoch, -(-total // max(1, max_evals)), 1)
    return StepBudget(g, per_epoch, total, min(every, total), min(int(min_steps), total))


def worker_slice(global_batch: int, rank: int, world_size: int) -> slice:
    """This worker's part ``[rank*g//W, (rank+1)*g//W)`` of a global batch of ``g`` samples (sizes differ by <= 1).

    Raises:
        ValueError: if the global batch is smaller than the number of workers (a worker would get no sample).
    """
    if global_batch < world_size:
        raise ValueError(f"global batch {global_batch} is smaller than the {world_size} workers")
    return slice(rank * global_batch // world_size, (rank + 1) * global_batch // world_size)


@dataclass
class EarlyStopping:
    """Track a metric to maximise (e.g. validation NDCG@10) and say when to stop.

    Example::

        >>> es = EarlyStopping(patience=2)
        >>> [es.update(v) for v in (0.1, 0.2, 0.19, 0.18)]
        [True, True, False, False]
        >>> es.should_stop, es.best, es.best_epoch
        (True, 0.2, 1)
    """

    patience: int = 3
    min_delta: float = 1e-4
    best: float = -math.inf
    best_epoch: int = -1
    epoch: int = -1
    bad_epochs: int = 0

    def update(self, value: float) -> bool:
        """Record this epoch's value; return True if it is a new best."""
        self.epoch += 1
        if value > self.best + self.min_delta:
            self.best, self.best_epoch, self.bad_epochs = value, self.epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.bad_epochs >= self.patience

    def state_dict(self) -> dict[str, float | int]:
        return {"best": self.best, "best_epoch": self.best_epoch, "epoch": self.epoch, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, float | int]) -> None:
        self.best = float(state["best"])
        self.best_epoch, self.epoch, self.bad_epochs = int(state["best_epoch"]), int(state["epoch"]), int(state["bad_epochs"])
