"""A small Pareto sweep (both searchers) on the shared local Ray cluster writes every output of issue 11."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from graphrec_ray.evaluation.policy_eval import PolicyEvaluator
from tests.unit.evaluation.planted_decision import planted
from tune import results as R

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_small_sweep_writes_table_curve_summary_journal_mlflow_and_serve_config(ray_cluster: None,
                                                                              tmp_path: Path) -> None:
    import mlflow

    from tune.pareto import main, read_study_front, split_users

    run_dir, out_dir = tmp_path / "run", tmp_path / "outputs"
    data = planted()
    npz = data.save(tmp_path / "dd.npz")
    serve_out = tmp_path / "serve_app.knee.yaml"
    rc = main(["--run-dir", str(run_dir), "--decision-data", str(npz), "--out-dir", str(out_dir),
               "--pick", "knee", "--serve-config-out", str(serve_out),
               "grid_w_engagement=[0.0,1.0]", "grid_lambda=[0.3,1.0]", "grid_pool=[30]",
               "nsga_trials=4", "nsga_population=2", "n_boot=100"])
    assert rc == 0
    for d in (run_dir / "pareto", out_dir):
        for name in ("pareto.csv", "pareto_summary.json", "pareto_curve.png"):
            assert (d / name).is_file(), d / name
    table = pd.read_csv(run_dir / "pareto" / "pareto.csv")
    assert table["searcher"].value_counts().to_dict() == {"grid": 4, "nsga2": 4, "serving": 1, "seed": 1}
    assert table["non_dominated"].any() and table["knee"].sum() == 1
    # trials ran the same evaluation as a direct call (object-store data, Serve reranking code)
    select, holdout = split_users(data.n_users, 0.5, 0)
    ev = PolicyEvaluator(data.subset(select), n_boot=100)
    for _, row in table[table["searcher"] == "grid"].iterrows():
        direct = ev.evaluate(R.setting_of(row)).metrics()
        assert row["engagement"] == pytest.approx(direct["engagement"])
        assert row["diversity/ci_low"] == pytest.approx(direct["diversity/ci_low"])
    summary = json.loads((run_dir / "pareto" / "pareto_summary.json").read_text())
    assert summary["hypervolume"] > 0 and summary["n_settings"] == 10
    assert (summary["users_selection"], summary["users_holdout"]) == (select.size, holdout.size) == (20, 20)
    assert not set(select) & set(holdout)
    # the NSGA-II study reads back from its journal file
    front = read_study_front(Path(summary["optuna"]["journal"]), summary["optuna"]["study_name"])
    assert 1 <= len(front) == summary["optuna"]["pareto_trials_read_back"]
    # MLflow: one parent, one nested child per row
    runs = mlflow.search_runs(experiment_names=["pareto"], output_format="list")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(parents) == 1 and len(children) == 10
    assert {"w_engagement", "lambda_diversity", "pool_size"} <= set(children[0].data.params)
    # --pick knee wrote the knee's weights into a Serve config copy
    knee = table[table["knee"]].iloc[0]
    assert R.serving_setting(serve_out, ROOT / "configs/serve.yaml") == R.setting_of(knee)
    doc = yaml.safe_load(serve_out.read_text())
    assert doc["applications"][0]["args"]["run_dir"] == str(run_dir.resolve())
    assert np.isfinite(table["value/ci_high"]).all()
