"""The ranking stage's ``run`` without Ray (:mod:`graphrec_ray.ranking.stage`): what it writes, and that it saves
the best weights its training reports (not the last ones)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from graphrec_ray.calibration.factory import load_calibrator
from graphrec_ray.config import load_config
from graphrec_ray.layout import RunLayout
from graphrec_ray.manifest import read_manifest, verify_manifest
from graphrec_ray.ranking import stage
from graphrec_ray.ranking.bundle import load_model
from graphrec_ray.ranking.config import RankingConfig
from graphrec_ray.ranking.data import resolve_data_dir
from tests.unit.ranking.conftest import make_tiny_run

SMALL = ["batch_size=256", "expert_hidden=[16]", "tower_hidden=[8]", "train_baselines=false"]


def test_run_in_process_writes_every_output_with_a_verified_manifest(tmp_path: Path) -> None:
    layout = RunLayout(make_tiny_run(tmp_path))
    cfg = load_config(RankingConfig, None, [*SMALL, "epochs=2", "calibration=platt"])
    summary = stage.run(cfg, layout)
    out = layout.ranking
    assert verify_manifest(out) == []
    man = read_manifest(out)
    assert set(summary["files"]) == set(man["files"])
    assert {"model.pt", "calibrator.json", "feature_spec.json", "metrics.csv", "history.json"} <= set(man["files"])
    assert man["epochs_run"] == 2 == len(json.loads((out / "history.json").read_text()))
    assert man["serving_calibrator"] == {"mmoe": "platt"} and load_calibrator(layout.calibrator).to_dict()["method"] \
        == "platt"
    assert man["fingerprint"] == summary["fingerprint"] == stage.fingerprint(
        cfg, layout.root.resolve(), resolve_data_dir(layout.root.resolve(), cfg.data_dir).resolve())


def test_run_saves_the_best_weights_of_the_injected_training(tmp_path: Path) -> None:
    layout = RunLayout(make_tiny_run(tmp_path))
    cfg = load_config(RankingConfig, None, [*SMALL, "epochs=1"])
    calls: list[tuple[Path, str]] = []

    def train(c: RankingConfig, prepared: Path, fp: str) -> dict[str, Any]:
        calls.append((prepared, fp))
        st = stage.train_models(c, prepared, fp)
        best = {n: {k: torch.full_like(v, 0.125) if v.is_floating_point() else v for k, v in sd.items()}
                for n, sd in st["best"].items()}
        return {**st, "best": best}  # "best" differs from the last weights in st["models"]

    stage.run(cfg, layout, train)
    assert calls == [(layout.ranking_prepared.resolve(), read_manifest(layout.ranking)["fingerprint"])]
    saved = load_model(layout.ranker_model).state_dict()
    assert all(torch.all(v == 0.125) for v in saved.values() if v.is_floating_point())


def test_baselines_train_only_up_to_baselines_max_rows(tmp_path: Path) -> None:
    """Issue 14: the single-task baselines cost as much training as the MMoE and are never served, so above
    ``baselines_max_rows`` training rows the MMoE trains alone (the workers get the same decision: only the MMoE's
    weights come back), the manifest says why, and at or below the limit they are trained and reported as before."""
    layout = RunLayout(make_tiny_run(tmp_path))
    base = ["batch_size=256", "expert_hidden=[16]", "tower_hidden=[8]", "epochs=1", "train_baselines=true"]
    trained: list[set[str]] = []

    def train(c: RankingConfig, prepared: Path, fp: str) -> dict[str, Any]:
        st = stage.train_models(c, prepared, fp)
        trained.append(set(st["best"]))
        return st

    stage.run(load_config(RankingConfig, None, [*base, "baselines_max_rows=10"]), layout, train)
    man = read_manifest(layout.ranking)
    assert trained[-1] == {"mmoe"} and "baselines_max_rows 10" in man["baselines_skipped"]
    assert not layout.ranker_baselines.exists() and "baselines.pt" not in man["files"]
    n_train = man["rows"]["train"]
    stage.run(load_config(RankingConfig, None, [*base, f"baselines_max_rows={n_train}"]), layout, train)
    man = read_manifest(layout.ranking)
    assert trained[-1] == {"mmoe", "click", "value"} and man["baselines_skipped"] is None
    assert "baselines.pt" in man["files"]
