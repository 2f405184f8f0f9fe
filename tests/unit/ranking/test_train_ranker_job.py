"""The ranking job's resume key: the same inputs resume, changed inputs or model config start afresh."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from graphrec_ray.layout import RunLayout
from graphrec_ray.ranking.config import RankingConfig
from graphrec_ray.ranking.stage import fingerprint
from graphrec_ray.training import TrainerConfig
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


def test_local_mode_run_writes_all_outputs(tmp_path: Path) -> None:
    """Ray Train local mode (num_workers=0, no cluster): the whole driver on tiny simulator data, isotonic option.
    (Local mode keeps no checkpoints in storage, so resume is checked in tests/integration.)"""
    import csv
    import json

    from graphrec_ray.config import load_config
    from graphrec_ray.manifest import verify_manifest
    from jobs import train_ranker

    run = make_tiny_run(tmp_path)
    cfg = load_config(RankingConfig, None, ["trainer.num_workers=0", "batch_size=256", "expert_hidden=[16]",
                                            "tower_hidden=[8]", "epochs=2", "calibration=isotonic"])
    summary = train_ranker.run(cfg, run, progress=False, track=False)
    out = RunLayout(run).ranking
    assert verify_manifest(out) == []
    assert json.loads((out / "calibrator.json").read_text())["method"] == "isotonic"
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    cals = ["raw", "platt", "isotonic"]  # neg_sample_rate 1: the down-sampling correction is the raw model
    assert [(r["model"], r["calibrator"], r["split"]) for r in rows] == [
        (m, c, s) for s in ("test", "eval_small") for m in ("mmoe", "single_task") for c in cals]
    assert [r["serving"] for r in rows if r["model"] == "mmoe" and r["split"] == "test"] == ["0", "0", "1"]
    assert json.loads((out / "feature_spec.json").read_text())["dim"] == summary["feature_dim"]
    assert [h["epoch"] for h in summary["history"]] == [0.0, 1.0]


def test_local_mode_downsampled_negatives_report_every_calibrator(tmp_path: Path) -> None:
    """neg_sample_rate < 1: fewer training rows, a down-sampling row beside raw/Platt/isotonic, the serving
    calibrator chosen on validation (auto) and saved, and the reliability bins of every curve written."""
    import csv
    import json

    from graphrec_ray.calibration.factory import load_calibrator
    from graphrec_ray.config import load_config
    from jobs import train_ranker

    run = make_tiny_run(tmp_path)
    cfg = load_config(RankingConfig, None, ["trainer.num_workers=0", "batch_size=256", "expert_hidden=[16]",
                                            "tower_hidden=[8]", "epochs=1", "neg_sample_rate=0.2",
                                            "train_baselines=false"])
    summary = train_ranker.run(cfg, run, progress=False, track=False)
    out = RunLayout(run).ranking
    assert np.load(out / "prepared" / "train" / "label_click.npy").mean() > 0.5  # the tiny preset clicks ~1/3 of views; sampling lifts the rate
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    test_rows = {r["calibrator"]: r for r in rows if r["split"] == "test"}
    assert list(test_rows) == ["raw", "downsampling", "platt", "isotonic"]
    assert all(r["neg_sample_rate"] == "0.2" for r in rows)
    chosen = [c for c, r in test_rows.items() if r["serving"] == "1"]
    assert len(chosen) == 1 and chosen[0] != "raw"
    assert load_calibrator(out / "calibrator.json").method == chosen[0]
    assert set(summary["calibrator_selection"]["mmoe"]) == {"platt", "isotonic", "downsampling"}
    curves = json.loads((out / "calibration_curves.json").read_text())
    for panel in curves["panels"].values():
        assert list(panel) == ["raw", "downsampling", "platt", "isotonic"]
