"""The retrieval search's trial (no Ray): one validation rule for every trial, typed params, reported points."""

from __future__ import annotations

import numpy as np
import pytest

from graphrec_ray.interactions import Interactions
from graphrec_ray.retrieval.config import RetrievalConfig
from graphrec_ray.retrieval.search import RetrievalSearchConfig, run_trial, trial_config
from tests.unit.retrieval.planted import planted_communities


def test_trial_config_fixes_the_validation_rule_and_rejects_unsearchable_fields() -> None:
    base = RetrievalConfig()
    s = RetrievalSearchConfig(val_relevance=2.0, seed=3)
    a = trial_config(base, s, {"lr": 0.01, "positive_threshold": 0.5, "epochs": 30.0})
    b = trial_config(base, s, {"lr": 0.01, "positive_threshold": 2.0, "epochs": 30})
    assert a.val_relevance == b.val_relevance == 2.0  # trials on other thresholds compare on one metric
    assert a.epochs == 30 and isinstance(a.epochs, int) and a.seed == 3 and not a.refit
    with pytest.raises(ValueError):
        trial_config(base, s, {"dim": 8})
    with pytest.raises(ValueError):
        RetrievalSearchConfig(lr=(0.1, 0.01))


def test_run_trial_reports_every_validation_point_and_the_running_choice() -> None:
    data = planted_communities(users_per=10, seed=2)
    U, I = data.train.n_users, data.train.n_items
    train = Interactions(data.train.user_idx, data.train.item_idx, U, I, np.full(len(data.train), 3.0))
    val = Interactions(np.arange(U), data.heldout, U, I, np.full(U, 3.0))
    base = RetrievalConfig(dim=8, batch_size=64, min_steps=10, max_evals=8)
    cfg = trial_config(base, RetrievalSearchConfig(model="lightgcn"), {"lr": 0.02, "epochs": 8})
    reports: list[dict[str, float]] = []
    out = run_trial(cfg, train, val, report=reports.append)
    assert len(reports) == out["points"] >= 2
    assert reports[-1]["selected_step"] == out["selected_step"] >= 10
    assert out["selected_val"] == max(r["val_recall@20"] for r in reports if r["step"] >= 10) > 0.5
