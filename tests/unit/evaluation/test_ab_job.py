"""The `graphrec ab` job on a synthetic decision-data file: files written, second retrieval skipped, --arm parsing."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from graphrec_ray.config import load_config
from graphrec_ray.errors import ConfigError, DataError
from graphrec_ray.evaluation.ab import ABConfig, ArmSpec
from graphrec_ray.evaluation.decision_data import DecisionData
from jobs.ab_test import main, parse_arm, run


def _decision_data(U: int = 30, K: int = 60, n_items: int = 300, seed: int = 0) -> DecisionData:
    rng = np.random.default_rng(seed)
    unit = rng.normal(size=(n_items, 4)).astype(np.float32)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    item_idx = np.stack([rng.choice(n_items, K, replace=False) for _ in range(U)])
    p_true = rng.beta(4, 2, (U, K))
    return DecisionData(user_idx=np.arange(U), user_raw=np.arange(U) + 500, item_idx=item_idx,
                        p_click=p_true.astype(np.float32), e_value=rng.uniform(0, 1.5, (U, K)).astype(np.float32),
                        true_click=p_true, true_value=rng.uniform(0, 1.5, (U, K)), item_unit=unit,
                        item_category=rng.integers(0, 6, n_items), item_raw=np.arange(n_items) + 10_000,
                        truth_source="small_matrix")


def test_job_writes_results_and_skips_missing_second_retrieval(tmp_path: Path):
    run_dir, out, copy_to = tmp_path / "run", tmp_path / "run" / "ab", tmp_path / "outputs"
    cfg = ABConfig(arms=(ArmSpec("serving"), ArmSpec("no_mmr", lambda_diversity=1.0),
                         ArmSpec("ips", retrieval="second")), replicas=10, n_boot=100, k_candidates=60,
                 coverage_replications=2)
    _decision_data().save(out / "decision_data_main_k60_nall_s0.npz")  # the job's cache: no models needed
    res = run(cfg, run_dir, data_dir=str(tmp_path), track=False, copy_to=copy_to)
    assert any("ips" in n for n in res["meta"]["notes"])
    assert {r["arm"] for r in res["arms"]} == {"serving", "no_mmr"}
    with open(out / "ab_results.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["kind"] for r in rows} == {"arm", "difference"}
    assert len([r for r in rows if r["kind"] == "difference"]) == 7  # one treatment x 7 metrics
    doc = json.loads((copy_to / "ab_results.json").read_text())
    assert doc["meta"]["n_simulated_users"] == 300 and doc["meta"]["truth_source"] == "small_matrix"
    assert (copy_to / "ab_results.csv").is_file() and (out / "ab_results.md").is_file()
    with open(copy_to / "ab_coverage.csv") as fh:
        cov = list(csv.DictReader(fh))
    assert len(cov) == 7 and all(r["replications"] == "2" for r in cov)


def test_arm_flag_parses_strictly():
    arm = parse_arm("name=pareto,w_engagement=0.4,w_value=1,lambda_diversity=0.6")
    assert arm == ArmSpec("pareto", w_engagement=0.4, w_value=1.0, lambda_diversity=0.6)
    with pytest.raises(ConfigError):
        parse_arm("name=x,w_revenue=0.4")  # unknown key
    with pytest.raises(ConfigError):
        parse_arm("w_value=1")  # no name


def test_missing_run_dir_is_a_one_line_user_error(tmp_path: Path):
    from jobs.cli import main as cli

    assert cli(["ab", "--run-dir", str(tmp_path / "nope"), "--config", "configs/ab.yaml", "--no-mlflow"]) == 2
    with pytest.raises(DataError, match="run directory not found"):
        main(["--run-dir", str(tmp_path / "nope"), "--no-mlflow"])


def test_shipped_config_loads_with_the_serving_weights_as_control():
    cfg = load_config(ABConfig, "configs/ab.yaml")
    assert cfg.arms[0] == ArmSpec("serving")  # ServeConfig's reranking defaults
    assert [a.retrieval for a in cfg.arms].count("second") == 1


def test_second_retrieval_arm_runs_when_a_second_run_is_given(tmp_path: Path):
    # the "second" run has the same candidates here, so the second-retrieval arm's true effect is exactly 0
    out = tmp_path / "run" / "ab"
    dd = _decision_data()
    dd.save(out / "decision_data_main_k60_nall_s0.npz")
    dd.save(out / "decision_data_second_k60_nall_s0.npz")
    cfg = ABConfig(arms=(ArmSpec("serving"), ArmSpec("ips", retrieval="second")), replicas=10, n_boot=100,
                   k_candidates=60, coverage_replications=0, second_run_dir=str(tmp_path / "other_run"))
    res = run(cfg, tmp_path / "run", data_dir=str(tmp_path), track=False, copy_to=None)
    assert res["meta"]["notes"] == []
    assert {r["arm"] for r in res["differences"]} == {"ips"}
    assert all(r["true_difference"] == 0.0 for r in res["differences"])


def test_cached_decision_data_older_than_a_stage_is_rebuilt(tmp_path: Path):
    # stale-cache guard: a stage rerun after the cache was written (newer manifest) must not reuse old candidates;
    # this fake run has no preprocess outputs, so the rebuild fails loudly instead of reusing the cache
    import os
    import time

    run_dir = tmp_path / "run"
    _decision_data().save(run_dir / "ab" / "decision_data_main_k60_nall_s0.npz")
    manifest = run_dir / "ranking" / "manifest.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text("{}")
    later = time.time() + 60
    os.utime(manifest, (later, later))
    cfg = ABConfig(arms=(ArmSpec("serving"), ArmSpec("no_mmr", lambda_diversity=1.0)), replicas=10, n_boot=100,
                   k_candidates=60, coverage_replications=0)
    with pytest.raises(DataError):
        run(cfg, run_dir, data_dir=str(tmp_path), track=False, copy_to=None)
