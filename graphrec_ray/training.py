"""Training schedule shared by the retrieval and ranking trainers: scaling, checkpoints, early stopping.

Plain Python: the Ray Train wiring that consumes :class:`TrainerConfig` lives in ``jobs/ray_train.py``.
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
