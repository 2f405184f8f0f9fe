"""The Ray Train path of ``graphrec train-ranker``: 2 DDP workers on the shared local cluster, tiny simulator
data; outputs, manifest, MLflow, the serving bundle, and resume from the last checkpoint."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from graphrec_ray.config import load_config
from graphrec_ray.manifest import verify_manifest
from graphrec_ray.ranking.bundle import RankerBundle
from graphrec_ray.ranking.config import RankingConfig
from graphrec_ray.ranking.context import RequestContext
from tests.unit.ranking.conftest import make_tiny_run

pytestmark = pytest.mark.integration


def test_train_ranker_two_workers_then_resume(ray_cluster: None, tmp_path: Path) -> None:
    import mlflow


    from jobs import train_ranker

    run_dir = make_tiny_run(tmp_path)
    overrides = ["trainer.num_workers=2", "trainer.cpus_per_worker=0.5", "torch_threads=1", "batch_size=256",
                 "expert_hidden=[16]", "tower_hidden=[8]", "trainer.early_stopping_patience=0"]
    cfg = load_config(RankingConfig, "configs/ranking.yaml", overrides + ["epochs=1"])
    summary = train_ranker.run(cfg, run_dir, progress=False, name="it")
    out = run_dir / "ranking"
    assert verify_manifest(out) == []
    for f in ("model.pt", "calibrator.json", "feature_spec.json", "metrics.csv", "metrics.md", "reliability.png",
              "baselines.pt"):
        assert (out / f).is_file(), f
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert {(r["model"], r["split"]) for r in rows} == {(m, s) for m in ("mmoe", "single_task")
                                                       for s in ("test", "eval_small")}
    assert all(0.0 <= float(r["true_mae"]) <= 1.0 for r in rows)  # simulator truth was found and used
    assert len(summary["history"]) == 1
    assert summary["history"][0]["samples"] * 2 <= len(np.load(out / "prepared" / "train" / "user_idx.npy"))
    runs = mlflow.search_runs(experiment_names=["ranking"])
    assert len(runs) == 1 and "metrics.mmoe.test.raw.auc" in runs.columns

    # resume: same storage and name, one more epoch -> continues at epoch 1 from the checkpoint
    cfg2 = load_config(RankingConfig, "configs/ranking.yaml", overrides + ["epochs=2"])
    summary2 = train_ranker.run(cfg2, run_dir, progress=False, track=False, name="it")
    assert [h["epoch"] for h in summary2["history"]] == [0.0, 1.0]
    assert summary2["history"][0] == summary["history"][0]  # the first epoch was not re-run

    # the same finished run again: comes back from its checkpoint, nothing is retrained
    summary3 = train_ranker.run(cfg2, run_dir, progress=False, track=False, name="it")
    assert summary3["history"] == summary2["history"] and summary3["metrics"] == summary2["metrics"]

    bundle = RankerBundle.load(run_dir)
    p, v = bundle.score(0, np.arange(5), RequestContext(timestamp=1_596_000_000.0, position_in_session=1,
                                                        seconds_since_last_view=30.0))
    assert p.shape == (5,) and np.all((p >= 0) & (p <= 1)) and np.all(np.isfinite(v))
    assert json.loads((out / "manifest.json").read_text())["epochs_run"] == 2
