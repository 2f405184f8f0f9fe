"""Ranking test fixtures: a tiny simulator run directory (simulate -> preprocess -> random retrieval embeddings) shared by the module."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def make_tiny_run(root: Path, emb_dim: int = 8, seed: int = 3) -> Path:
    """Simulator ``tiny`` preset, preprocessed, plus random retrieval embeddings; returns the run dir."""
    from graphrec_ray.layout import RunLayout
    from graphrec_ray.preprocess.config import PreprocessConfig
    from graphrec_ray.preprocess.stage import preprocess_local
    from graphrec_ray.sources.simulator import SimulatorConfig, simulate

    data = root / "data"
    simulate(SimulatorConfig(preset="tiny", seed=seed), data, progress=False)
    layout = RunLayout(root / "run")
    layout.preprocess.mkdir(parents=True)
    summary = preprocess_local(PreprocessConfig(data_dir=str(data)), layout.preprocess)
    layout.retrieval.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    np.save(layout.user_embeddings, rng.normal(size=(summary["n_users"], emb_dim)).astype(np.float32))
    np.save(layout.item_embeddings, rng.normal(size=(summary["n_items"], emb_dim)).astype(np.float32))
    return layout.root


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_run(tmp_path_factory.mktemp("ranking_tiny"))
