"""The index stage's ``run`` without Ray or MLflow (:mod:`graphrec_ray.index.stage`) on a planted run directory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graphrec_ray.config import load_config
from graphrec_ray.errors import DataError
from graphrec_ray.index import stage
from graphrec_ray.index.config import IndexConfig
from graphrec_ray.index.faiss_index import ItemIndex
from graphrec_ray.layout import RunLayout
from graphrec_ray.manifest import read_manifest, verify_manifest
from tests.unit.serving.planted import make_run_dir


def test_run_builds_an_index_that_finds_each_users_best_item(tmp_path: Path) -> None:
    planted = make_run_dir(tmp_path, embedding_version="emb-42")
    layout = RunLayout(tmp_path)
    layout.faiss_index.unlink()  # the stage must write it
    cfg = load_config(IndexConfig, None, ["factory=Flat", "verify_recall_k=10", "verify_queries=30"])
    summary = stage.run(cfg, layout)
    assert summary["n_items"] == 120 and summary["embedding_version"] == "emb-42"
    assert summary["recall_at_10"] == 1.0  # exact search: recall against exact top-k is 1
    assert verify_manifest(layout.index) == [] and read_manifest(layout.index)["embedding_version"] == "emb-42"
    index = ItemIndex.load(layout.index, expect_embedding_version="emb-42")
    _, ids = index.search(planted.user_emb, 1)
    assert ids[:, 0].tolist() == np.argmax(planted.user_emb @ planted.item_emb.T, axis=1).tolist()


def test_run_without_embeddings_says_which_stage_to_run(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="train-retrieval"):
        stage.run(IndexConfig(), RunLayout(tmp_path / "empty"))
