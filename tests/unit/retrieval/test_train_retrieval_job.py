"""Pieces of ``jobs/train_retrieval.py`` that need no Ray: the resume key."""

from __future__ import annotations

from graphrec_ray.config import load_config
from graphrec_ray.retrieval.config import RetrievalConfig
from jobs.train_retrieval import resume_key


def test_resume_key_ignores_epochs_workers_and_baselines_but_not_the_model_recipe() -> None:
    base = load_config(RetrievalConfig, None, [])
    same = load_config(RetrievalConfig, None, ["epochs=99", "trainer.num_workers=4", "baselines=[mf]",
                                               "torch_threads=2", "trainer.cpus_per_worker=2.0"])
    assert resume_key(base) == resume_key(same)  # a longer or wider rerun resumes the same checkpoints
    for change in ("lr=0.01", "clip_max=5.0", "hard_ratio=0.3", "positive_threshold=0.5", "dim=32"):
        assert resume_key(load_config(RetrievalConfig, None, [change])) != resume_key(base), change


def test_search_values_replace_the_config_unless_use_search_is_off(tmp_path) -> None:
    import json
    from pathlib import Path

    import pytest

    from graphrec_ray.layout import RunLayout
    from jobs.train_retrieval import SEARCH_FILE, apply_search, load_search

    layout = RunLayout(Path(tmp_path))
    assert load_search(layout) is None
    layout.retrieval.mkdir(parents=True)
    doc = {"model": "lightgcn_ips", "steps": 123, "params": {"lr": 0.003, "positive_threshold": 0.5, "epochs": 30}}
    (layout.retrieval / SEARCH_FILE).write_text(json.dumps(doc))
    base = load_config(RetrievalConfig, None, [])
    got = apply_search(base, load_search(layout))
    assert (got.lr, got.positive_threshold, got.epochs, got.dim) == (0.003, 0.5, 30, base.dim)
    assert apply_search(load_config(RetrievalConfig, None, ["use_search=false"]), doc).lr == base.lr
    with pytest.raises(ValueError):
        apply_search(base, {**doc, "params": {"no_such_field": 1}})
