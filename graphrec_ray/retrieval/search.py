"""Hyperparameter search for retrieval on validation data only: the search space and one trial (Ray-free).

A trial is the *selection* phase of :mod:`graphrec_ray.retrieval.fit` for one setting of (lr, reg, step budget,
positive threshold, IPS clip and power, hard-negative ratio): train on the training split, validate on the
validation split every ``eval_every`` steps, report the selected step and its validation Recall@20. The test
splits and ``small_matrix`` are never read. The Ray Tune wiring (OptunaSearch, concurrency, MLflow, the
``search.json`` that ``train-retrieval`` applies) is ``tune/retrieval_search.py``.

Validation positives are ``watch_ratio >= val_relevance`` with one fixed threshold for every trial, so trials that
train on different positive thresholds are compared on the same metric.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

from graphrec_ray.interactions import Interactions
from graphrec_ray.retrieval.config import MODEL_NAMES, RetrievalConfig

#: the hyperparameters a search may set (fields of RetrievalConfig); ``epochs`` sets the step budget
SEARCHED = ("lr", "reg", "epochs", "positive_threshold", "clip_max", "propensity_power", "hard_ratio")


@dataclass(frozen=True)
class RetrievalSearchConfig:
    """Search space and budget of ``graphrec tune-retrieval`` (``configs/retrieval_search.yaml`` lists changes)."""

    model: str = "lightgcn_ips"  # the model searched (the stage's exported model)
    num_samples: int = 12  # trials: ~4 min at demo scale on 2 cores (2 at a time, ~30-40 s each)
    max_concurrent: int = 2  # trials at once: one per core on the 2-core machine
    lr: tuple[float, float] = (1e-3, 3e-2)  # Adam learning rate, log-uniform (default 5e-3 inside)
    reg: tuple[float, float] = (1e-5, 1e-3)  # L2 on ego embeddings, log-uniform (paper 1e-4 inside)
    epochs: tuple[int, int] = (20, 100)  # step budget in passes over the positives (issue 10: rising until ~60)
    positive_threshold: tuple[float, ...] = (2.0,)  # choices; the biased validation split prefers exposure-heavy 0.5
    clip_max: tuple[float, float] = (5.0, 200.0)  # IPS weight clip, log-uniform (ignored by non-IPS models)
    propensity_power: tuple[float, float] = (0.25, 1.0)  # exposure ~ count^power (0.5 usual, 1 proportional)
    hard_ratio: tuple[float, float] = (0.0, 0.5)  # share of mined hard negatives (0 = uniform only)
    val_relevance: float = 2.0  # validation positive = watch_ratio >= this, the same for every trial
    seed: int = 0  # Optuna sampler seed and the training seed of every trial
    ray_num_cpus: int = 2  # logical CPUs of the local cluster the job starts (ignored on an existing cluster)
    experiment: str = "retrieval"  # MLflow experiment of the search run
    tracking_uri: str | None = None  # MLflow tracking URI; None = MLFLOW_TRACKING_URI or ./mlruns

    def __post_init__(self) -> None:
        if self.model not in MODEL_NAMES or self.model == "popularity":
            raise ValueError(f"model must be an embedding model of {MODEL_NAMES[:-1]}, got {self.model!r}")
        if self.num_samples < 1 or self.max_concurrent < 1 or self.ray_num_cpus < 1:
            raise ValueError("num_samples, max_concurrent and ray_num_cpus must be >= 1")
        for name in ("lr", "reg", "epochs", "clip_max", "propensity_power", "hard_ratio"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"{name} must be a range (low, high) with 0 <= low <= high")
        if not self.positive_threshold:
            raise ValueError("positive_threshold needs at least one choice")

    def space(self) -> dict[str, tuple[str, Any]]:
        """``{field: (kind, bounds)}`` with kind ``loguniform`` / ``uniform`` / ``int`` / ``choice``."""
        return {"lr": ("loguniform", self.lr), "reg": ("loguniform", self.reg), "epochs": ("int", self.epochs),
                "positive_threshold": ("choice", self.positive_threshold),
                "clip_max": ("loguniform", self.clip_max), "propensity_power": ("uniform", self.propensity_power),
                "hard_ratio": ("uniform", self.hard_ratio)}


def trial_config(base: RetrievalConfig, search: RetrievalSearchConfig, params: dict[str, Any]) -> RetrievalConfig:
    """The retrieval config of one trial: ``base`` with ``params``, the search's model, seed and validation rule."""
    unknown = set(params) - set(SEARCHED)
    if unknown:
        raise ValueError(f"not searchable: {sorted(unknown)}")
    typed = {k: (int(v) if k == "epochs" else float(v)) for k, v in params.items()}
    return replace(base, model=search.model, seed=search.seed, refit=False, val_relevance=search.val_relevance,
                   **typed)


def run_trial(cfg: RetrievalConfig, train: Interactions, val: Interactions,
              report: Callable[[dict[str, float]], None] | None = None) -> dict[str, float]:
    """Selection phase of ``cfg.model`` on ``train`` / ``val``; reports every validation point.

    Returns:
        ``{"selected_step", "selected_val", "budget_steps", "points"}`` (``selected_val``: validation
        ``cfg.val_metric`` at the selected step).
    """
    from graphrec_ray.retrieval.build import build_item_weights, build_trainer, training_positives, uses_ips
    from graphrec_ray.retrieval.fit import budget_for, select_then_refit, validation_fn

    pos = training_positives(cfg, train)
    if len(pos) == 0:
        raise ValueError(f"no training positives at positive_threshold={cfg.positive_threshold}")
    w = build_item_weights(cfg, train, pos) if uses_ips(cfg.model) else None
    budget = budget_for(cfg, len(pos))
    sent = {"n": 0}

    def on_point(row: dict[str, float], thunk: Any) -> None:
        st = thunk()
        sent["n"] += 1
        if report is not None:
            report({"step": row["step"], f"val_{cfg.val_metric}": row[f"val_{cfg.val_metric}"],
                    "selected_step": float(st["selected_step"]), "selected_val": float(st["selected_val"])})

    st = select_then_refit(lambda p, phase: build_trainer(cfg.model, cfg, p, w),
                           validation_fn(cfg, val, pos, w), pos, pos, budget, cfg.val_metric,
                           cfg.trainer.early_stopping_patience, cfg.trainer.min_delta, refit=False,
                           on_point=on_point)
    return {"selected_step": float(st["selected_step"]), "selected_val": float(st["selected_val"]),
            "budget_steps": float(budget.total_steps), "points": float(sent["n"])}
