"""Select, then refit: how every embedding model of the retrieval stage is trained.

1. **Select.** Train on the training positives for a budget in optimiser steps
   (:func:`graphrec_ray.training.step_budget`: it scales with the number of positives and does not depend on the
   worker count), validating every ``eval_every`` steps on held-out validation positives. Early stopping may stop
   only after ``min_steps``; the chosen step is the best plain validation metric at or after ``min_steps``
   (:mod:`graphrec_ray.retrieval.selection`).
2. **Refit.** Train a fresh model from the same seed on training + validation positives for the chosen number of
   steps; its embeddings are the exported ones (with ``refit=False``, the selected step's embeddings from the
   selection run instead).

:func:`select_then_refit` is the loop, written once for the Ray Train worker (``jobs/train_retrieval.py``, which
checkpoints through ``on_point``) and for in-process fits (:func:`fit_in_process`: tests, benchmarks, the Tune
search). Its state is a plain dict, so a run resumed from a checkpoint continues in the phase and at the step it
had reached.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Callable

import numpy as np

from graphrec_ray.evaluation.protocols import temporal_protocol
from graphrec_ray.interactions import Interactions
from graphrec_ray.retrieval.base import EmbeddingRecommender
from graphrec_ray.retrieval.config import RetrievalConfig
from graphrec_ray.retrieval.selection import select_step, should_stop
from graphrec_ray.retrieval.train import BPRTrainer
from graphrec_ray.training import StepBudget, step_budget

#: cheap per-point validation: the selection metric and its IPS-weighted sibling
VAL_KS = {"recall_ks": (20,), "ndcg_ks": (10, 20)}

MakeTrainer = Callable[[Interactions, str], BPRTrainer]  # (positives, phase "select" | "refit") -> trainer
WeightsFn = Callable[[Interactions, Interactions], "np.ndarray | None"]  # (exposures, positives) -> (I,) IPS weights
OnPoint = Callable[[dict[str, float], Callable[[], dict[str, Any]]], None]  # (row, state thunk) -> None


def budget_for(cfg: RetrievalConfig, n_positives: int) -> StepBudget:
    """The selection run's :class:`StepBudget` for ``n_positives`` training positives under ``cfg``."""
    return step_budget(n_positives, cfg.batch_size, cfg.epochs, cfg.min_steps, cfg.max_steps, cfg.max_evals,
                       cfg.steps_per_epoch)


def validation_fn(cfg: RetrievalConfig, val: Interactions, train_positives: Interactions,
                  item_weights: np.ndarray | None = None) -> Callable[[BPRTrainer], dict[str, float]]:
    """``trainer -> {"recall@20", "ndcg@10", "ndcg@20", "ips_*"...}`` on validation positives.

    Relevant = validation rows with ``watch_ratio >= cfg.val_relevance`` (default: ``cfg.positive_threshold``);
    training positives are excluded from the ranking.
    """
    seen = train_positives.matrix()
    thr = cfg.val_relevance if cfg.val_relevance is not None else cfg.positive_threshold

    def validate(trainer: BPRTrainer) -> dict[str, float]:
        u, i = trainer.embeddings()
        m = temporal_protocol(EmbeddingRecommender(u, i).score, val, seen, thr, item_weights=item_weights,
                              ci=False, **VAL_KS)
        out = {f"{p}{m_}@{k}": float("nan") for p in ("", "ips_") for m_, ks in
               (("recall", VAL_KS["recall_ks"]), ("ndcg", VAL_KS["ndcg_ks"])) for k in ks}  # NaN: no val positive
        out.update({k: float(v) for k, v in m.items() if k != "n_users"})
        return out if item_weights is not None else {k: v for k, v in out.items() if not k.startswith("ips_")}

    return validate


def select_then_refit(make_trainer: MakeTrainer, validate: Callable[[BPRTrainer], dict[str, float]],
                      train_pos: Interactions, refit_pos: Interactions, budget: StepBudget, metric: str = "recall@20",
                      patience: int = 5, min_delta: float = 1e-4, refit: bool = True,
                      fixed_steps: int | None = None, state: dict[str, Any] | None = None,
                      on_point: OnPoint | None = None, progress: bool = False) -> dict[str, Any]:
    """Run (or resume) selection then refit; returns the final state.

    Args:
        make_trainer: builds a fresh trainer for ``positives`` and phase ``"select"`` / ``"refit"``.
        validate: validation metrics of a trainer's current embeddings (see :func:`validation_fn`).
        train_pos: training positives (selection); refit_pos: training + validation positives (refit).
        budget: the selection run's steps, validation interval and ``min_steps``.
        metric: key of ``validate``'s output to select on (default ``"recall@20"``).
        patience: validation points without improvement before stopping (after ``min_steps``); 0 = never.
        min_delta: smallest improvement that counts.
        refit: refit on ``refit_pos`` (default True); False exports the selected step's embeddings.
        fixed_steps: skip selection and refit for this many steps (a Tune search already chose them).
        state: a state returned by an earlier call or passed to ``on_point`` (resume), or None.
        on_point: called after every validation / refit chunk with the history row and a thunk building the full
            state (for checkpoints).

    Returns:
        ``{"phase": "done", "history": [...], "selected_step", "selected_val", "budget_steps", "refit_steps",
        "user": (U, d), "item": (I, d), ...}``; history rows carry ``phase``, ``step``, ``epoch``, ``loss``,
        ``train_s`` (wall seconds of the row's optimiser steps), and ``val_s`` and ``val_*`` metrics (selection rows
        only).
    """
    st: dict[str, Any] = {**state, "history": list(state["history"])} if state is not None else {
        "phase": "select" if fixed_steps is None else "refit", "history": [], "trainer": None,
        "selected_step": fixed_steps, "selected_val": float("nan"), "best": None,
        "budget_steps": budget.total_steps, "refit_steps": 0}
    notify = on_point or (lambda row, thunk: None)

    if st["phase"] == "select":
        trainer = make_trainer(train_pos, "select")
        if st["trainer"] is not None:
            trainer.load_state_dict(st["trainer"])
        rows = [r for r in st["history"] if r["phase"] == 0.0]
        pts = [p for p in budget.eval_points() if p > trainer.step]
        for target in pts:
            if should_stop([int(r["step"]) for r in rows], [r[f"val_{metric}"] for r in rows], budget.min_steps,
                           patience, min_delta):
                break
            t0 = time.perf_counter()
            loss = trainer.run_steps(target - trainer.step, progress)
            t1 = time.perf_counter()
            val = validate(trainer)
            row = {"phase": 0.0, "step": float(trainer.step), "epoch": trainer.step / trainer.steps_per_epoch,
                   "loss": float(loss), "samples": float(trainer.last_samples),
                   "train_s": t1 - t0, "val_s": time.perf_counter() - t1,  # seconds of this chunk's steps / validation
                   **{f"val_{k}": v for k, v in val.items()}}
            rows.append(row)
            st["history"].append(row)
            chosen = select_step([int(r["step"]) for r in rows], [r[f"val_{metric}"] for r in rows],
                                 budget.min_steps, min_delta)
            if chosen == trainer.step:
                st["best"] = dict(zip(("user", "item"), trainer.embeddings()))
            st["selected_step"] = chosen
            st["selected_val"] = next(r[f"val_{metric}"] for r in rows if int(r["step"]) == chosen)
            st["trainer"] = trainer.state_dict()
            notify(row, lambda: {**st, "history": list(st["history"])})
        st["phase"] = "refit" if refit else "done"
        st["trainer"] = None
        if not refit:
            st.update(user=st["best"]["user"], item=st["best"]["item"], refit_steps=0)

    if st["phase"] == "refit":
        target = int(st["selected_step"])
        trainer = make_trainer(refit_pos, "refit")
        if st["trainer"] is not None:
            trainer.load_state_dict(st["trainer"])
        chunk = max(1, budget.eval_every)
        while trainer.step < target:
            t0 = time.perf_counter()
            loss = trainer.run_steps(min(chunk, target - trainer.step), progress)
            row = {"phase": 1.0, "step": float(trainer.step), "epoch": trainer.step / trainer.steps_per_epoch,
                   "loss": float(loss), "samples": float(trainer.last_samples), "train_s": time.perf_counter() - t0}
            st["history"].append(row)
            st["trainer"] = trainer.state_dict()
            if trainer.step < target:
                notify(row, lambda: {**st, "history": list(st["history"])})
        u, i = trainer.embeddings()
        st.update(phase="done", trainer=None, user=u, item=i, refit_steps=target)
        notify(st["history"][-1] if st["history"] else {"step": 0.0}, lambda: {**st, "history": list(st["history"])})
    return st


def fit_in_process(name: str, cfg: RetrievalConfig, train: Interactions, val: Interactions,
                   fixed_steps: int | None = None, progress: bool = False) -> dict[str, Any]:
    """Select-then-refit model ``name`` in this process (no Ray): the same loop as the Ray Train job.

    Args:
        name: an embedding model of ``MODEL_NAMES`` (``lightgcn_ips``, ``lightgcn``, ``mf_ips``, ``mf``).
        cfg: the retrieval config.
        train, val: all training / validation rows (with watch ratios); positives are taken with
            ``cfg.positive_threshold``, IPS weights from ``train`` exposures (refit: train + val).
        fixed_steps: skip selection, refit for this many steps.

    Returns:
        the state of :func:`select_then_refit` plus ``"refit_positives"`` (the exclusion set for evaluation).
    """
    from graphrec_ray.retrieval.build import build_item_weights, uses_ips

    def weights(exposures: Interactions, positives: Interactions) -> np.ndarray | None:
        return build_item_weights(cfg, exposures, positives) if uses_ips(name) else None

    return fit_select_refit(name, cfg, train, val, weights, fixed_steps, progress=progress)


def fit_select_refit(name: str, cfg: RetrievalConfig, train: Interactions, val: Interactions, weights: WeightsFn,
                     fixed_steps: int | None = None, state: dict[str, Any] | None = None,
                     on_point: OnPoint | None = None, progress: bool = False, device: Any = "cpu", rank: int = 0,
                     world: int = 1, wrap: Callable[[Any], Any] | None = None) -> dict[str, Any]:
    """The one select-then-refit recipe of embedding model ``name`` on ``train``/``val`` rows.

    Used in-process (:func:`fit_in_process`, :func:`graphrec_ray.retrieval.stage.fit_local`) and inside every Ray
    Train worker (``jobs/train_retrieval.py`` passes ``rank``/``world``, ``wrap`` = DDP ``prepare_model``, a
    resumed ``state`` and an ``on_point`` that checkpoints).

    Args:
        train, val: all training / validation rows (with watch ratios); positives use ``cfg.positive_threshold``.
        weights: ``(exposures, positives) -> (I,)`` IPS weights or None; called for selection (train) and refit
            (train + val).
        device: torch device of the model and adjacency.

    Returns:
        the state of :func:`select_then_refit` plus ``"refit_positives"`` (the exclusion set for evaluation).
    """
    from graphrec_ray.retrieval.build import build_adjacency, build_model, build_trainer, training_positives

    train_pos = training_positives(cfg, train)
    all_rows = train.concat(val)
    refit_pos = training_positives(cfg, all_rows)
    w_sel, w_ref = weights(train, train_pos), weights(all_rows, refit_pos)

    def make(pos: Interactions, phase: str) -> BPRTrainer:
        model = build_model(name, cfg, pos.n_users, pos.n_items).to(device)
        adj = build_adjacency(cfg, pos, device) if name.startswith("lightgcn") else None
        fwd = wrap(model) if wrap is not None else model
        return build_trainer(name, cfg, pos, w_sel if phase == "select" else w_ref, adj, rank, world, fwd, model)

    out = select_then_refit(make, validation_fn(cfg, val, train_pos, w_sel), train_pos, refit_pos,
                            budget_for(cfg, len(train_pos)), cfg.val_metric, cfg.trainer.early_stopping_patience,
                            cfg.trainer.min_delta, cfg.refit, fixed_steps, state, on_point, progress=progress)
    out["refit_positives"] = refit_pos if cfg.refit else train_pos
    return out


def with_params(cfg: RetrievalConfig, params: dict[str, Any]) -> RetrievalConfig:
    """``cfg`` with the top-level fields in ``params`` replaced (values chosen by the Tune search)."""
    unknown = set(params) - set(cfg.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown retrieval fields {sorted(unknown)}")
    return replace(cfg, **params)
