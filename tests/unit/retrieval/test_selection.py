"""Model selection: the chosen step and early stopping, on curves with a known answer and a planted slow learner."""

from __future__ import annotations

import math

import numpy as np

from graphrec_ray.evaluation.protocols import temporal_protocol
from graphrec_ray.interactions import Interactions
from graphrec_ray.retrieval.base import EmbeddingRecommender
from graphrec_ray.retrieval.build import build_trainer
from graphrec_ray.retrieval.config import RetrievalConfig
from graphrec_ray.retrieval.fit import select_then_refit
from graphrec_ray.retrieval.selection import select_step, should_stop
from graphrec_ray.training import step_budget
from tests.unit.retrieval.planted import planted_communities


def test_select_step_ignores_points_before_min_steps_and_nan() -> None:
    steps = [10, 20, 30, 40, 50]
    # a noisy first point is the global maximum (the degenerate "epoch 1" of issue 10); min_steps rules it out
    values = [0.9, 0.2, math.nan, 0.5, 0.4]
    assert select_step(steps, values) == 10
    assert select_step(steps, values, min_steps=15) == 40
    assert select_step(steps, [0.1, 0.2, 0.3, 0.3, 0.3], min_steps=0) == 30  # ties keep the earliest
    assert select_step(steps, values, min_steps=99) == 50  # none reaches min_steps: the longest run


def test_early_stopping_waits_for_min_steps_then_counts_patience() -> None:
    steps, values = [10, 20, 30, 40], [0.5, 0.4, 0.3, 0.2]
    assert not should_stop(steps, values, min_steps=50, patience=1)  # never before min_steps
    assert should_stop(steps, values, min_steps=0, patience=3)  # 3 points after the best (step 10)
    assert not should_stop(steps, values, min_steps=0, patience=4)
    assert not should_stop(steps, values, min_steps=0, patience=0)  # 0 = never
    assert should_stop(steps + [60], values + [0.1], min_steps=60, patience=1) is False  # best is 60 itself


def _slow_learner_setup() -> tuple[RetrievalConfig, Interactions, Interactions, np.ndarray]:
    data = planted_communities(users_per=12, seed=1)
    U, I = data.train.n_users, data.train.n_items
    val = Interactions(np.arange(U), data.heldout, U, I)
    # MF at a small learning rate: the held-out in-community item climbs into the top 10 slowly (validation
    # Recall@10 0.25 at the first point, a dip below it, then up to ~0.9 after 180 steps); default min_steps
    cfg = RetrievalConfig(dim=8, batch_size=64, lr=0.002, reg=0.0, epochs=30, max_evals=15)
    return cfg, data.train, val, data.train.matrix()


def test_selection_never_returns_the_first_point_on_a_planted_slow_learner() -> None:
    """Regression for issue 10's degenerate epoch: on a slow learner whose second and third validation points dip
    below the first, patience-only early stopping (min_steps=0) stops and returns the first point; with the
    default ``min_steps`` the run continues and selection picks a late point."""
    cfg, train, val, seen = _slow_learner_setup()

    def make(pos: Interactions, phase: str):
        return build_trainer("mf", cfg, pos, None)

    def validate(trainer) -> dict[str, float]:
        u, i = trainer.embeddings()
        m = temporal_protocol(EmbeddingRecommender(u, i).score, val, seen, recall_ks=(10,), ndcg_ks=(10,), ci=False)
        return {"recall@10": m["recall@10"]}

    def select(min_steps: int) -> tuple[dict, list[dict], int]:
        budget = step_budget(len(train), cfg.batch_size, cfg.epochs, min_steps, max_evals=cfg.max_evals)
        st = select_then_refit(make, validate, train, train, budget, metric="recall@10", patience=3, refit=False)
        return st, [r for r in st["history"] if r["phase"] == 0.0], budget.total_steps

    old, old_pts, _ = select(0)
    assert old["selected_step"] == old_pts[0]["step"]  # the failure: stopped early, first point chosen

    assert cfg.min_steps > old_pts[0]["step"]
    st, sel, total = select(cfg.min_steps)
    first, last = sel[0]["val_recall@10"], sel[-1]["val_recall@10"]
    assert last > first + 0.4, (first, last)  # the task really is a slow learner
    assert st["selected_step"] > sel[0]["step"] and st["selected_step"] >= total // 2
    assert st["selected_val"] == max(r["val_recall@10"] for r in sel if r["step"] >= cfg.min_steps)
