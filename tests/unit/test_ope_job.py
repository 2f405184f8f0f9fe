"""``graphrec ope`` on a cached synthetic decision-data file: writes ope_results.csv/json without Ray."""

from __future__ import annotations

import json

import numpy as np

from graphrec_ray.evaluation.decision_data import DecisionData
from jobs import ope


def _decision_data(u: int = 20, k: int = 50, n_items: int = 80) -> DecisionData:
    rng = np.random.default_rng(0)
    items = np.stack([rng.choice(n_items, size=k, replace=False) for _ in range(u)])
    truth = rng.uniform(0.05, 0.6, size=(u, k))
    unit = rng.normal(size=(n_items, 4)).astype(np.float32)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    return DecisionData(user_idx=np.arange(u), user_raw=np.arange(u), item_idx=items,
                        p_click=np.clip(truth + rng.normal(0, 0.05, truth.shape), 0.01, 0.99).astype(np.float32),
                        e_value=rng.uniform(0, 1.5, size=(u, k)).astype(np.float32), true_click=truth,
                        true_value=rng.uniform(0, 1.5, size=(u, k)), item_unit=unit,
                        item_category=np.zeros(n_items, dtype=np.int64), item_raw=np.arange(n_items),
                        truth_source="simulator")


def test_ope_job_writes_results(tmp_path) -> None:
    run_dir = tmp_path / "run"
    _decision_data().save(run_dir / "ope" / "decision_data_k50_nall_s0.npz")
    rc = ope.main(["--run-dir", str(run_dir), "--no-mlflow", "log_sizes=[500]", "n_seeds=2", "n_candidates=10"])
    assert rc == 0
    result = json.loads((run_dir / "ope" / "ope_results.json").read_text())
    names = {(r["setting"], r["estimator"]) for r in result["summary"]}
    assert ("single", "switch_dr") in names and ("slate", "cascade_dr") in names
    assert result["n_candidates"] == 10 and result["true_values"]["slate"]["uniform"] > 0
    header = (run_dir / "ope" / "ope_results.csv").read_text().splitlines()[0]
    assert header.startswith("setting,estimator,n_rounds,rel_error")


def test_missing_run_dir_is_a_one_line_user_error(tmp_path, capsys) -> None:
    """Regression: the job used to create run_dir/ope first, so a mistyped run dir appeared as an empty run."""
    from jobs.cli import main as cli_main

    assert cli_main(["ope", "--run-dir", str(tmp_path / "nope"), "--no-mlflow"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "run directory not found" in err[0]
    assert not (tmp_path / "nope").exists()


def test_bad_config_value_is_a_config_error(tmp_path, capsys) -> None:
    from jobs.cli import main as cli_main

    assert cli_main(["ope", "--run-dir", str(tmp_path), "--no-mlflow", "logger_epsilon=0"]) == 2
    assert "stochastic" in capsys.readouterr().err
