"""The ranking job's resume key: the same inputs resume, changed inputs or model config start afresh."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from graphrec_ray.layout import RunLayout
from graphrec_ray.ranking.config import RankingConfig
from graphrec_ray.training import TrainerConfig
from jobs.train_ranker import fingerprint
from tests.unit.ranking.conftest import make_tiny_run


def test_fingerprint_tracks_inputs_and_model_but_not_schedule(tmp_path: Path) -> None:
    """Regression: a fixed Ray Train run name made a rerun after new retrieval embeddings silently
    'resume' the finished run trained on the old embeddings."""
    run = make_tiny_run(tmp_path)
    data = tmp_path / "data"
    cfg = RankingConfig()
    fp = fingerprint(cfg, run, data)
    assert fp == fingerprint(replace(cfg, epochs=9, torch_threads=1, trainer=TrainerConfig(num_workers=2)), run, data)
    assert fp != fingerprint(replace(cfg, n_experts=2), run, data)
    emb = RunLayout(run).item_embeddings
    np.save(emb, np.load(emb) + 1.0)
    assert fp != fingerprint(cfg, run, data)
