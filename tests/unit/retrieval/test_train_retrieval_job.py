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
