"""jobs/build_index.py end to end on a planted run directory (no Ray needed: FAISS runs in-process)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from graphrec_ray.config import load_config
from graphrec_ray.index.config import IndexConfig
from graphrec_ray.index.faiss_index import ItemIndex
from jobs import build_index
from tests.unit.serving.planted import make_run_dir


def test_run_builds_index_matching_embeddings(tmp_path: Path) -> None:
    planted = make_run_dir(tmp_path, embedding_version="emb-42")
    (tmp_path / "index" / "items.faiss").unlink()  # the job must write it
    cfg = load_config(IndexConfig, None, ["factory=HNSW8", "verify_recall_k=10", "verify_queries=30"])
    summary = build_index.run(cfg, tmp_path, progress=False, track=False)
    assert summary["n_items"] == 120 and summary["embedding_version"] == "emb-42"
    assert summary["recall_at_10"] >= 0.95
    doc = json.loads((tmp_path / "index" / "manifest.json").read_text())
    assert doc["factory"] == "HNSW8" and doc["embedding_version"] == "emb-42"
    index = ItemIndex.load(tmp_path / "index", expect_embedding_version="emb-42")
    _, ids = index.search(planted.user_emb[:1], 1)
    assert ids[0, 0] == int(np.argmax(planted.item_emb @ planted.user_emb[0]))


def test_main_cli_with_overrides_and_missing_embeddings(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # MLflow 3.17 refuses the conftest's file: store unless opted in (reported to the lead for tests/conftest.py)
    make_run_dir(tmp_path / "run")
    assert build_index.main(["--run-dir", str(tmp_path / "run"), "--config", "configs/index.yaml",
                             "factory=IVF4,Flat", "nprobe=4"]) == 0  # logs to the temp MLflow store
    assert json.loads(capsys.readouterr().out)["factory"] == "IVF4,Flat"
    from graphrec_ray.errors import DataError

    with pytest.raises(DataError, match="train-retrieval"):
        build_index.run(IndexConfig(), tmp_path / "empty", progress=False, track=False)
