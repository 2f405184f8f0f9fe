"""The Ray-free half of the Pareto sweep: front and knee flags, summary, --pick, the Serve config copy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from graphrec_ray.errors import UserError
from graphrec_ray.evaluation.policy_eval import PolicyEvaluator, RerankSetting
from tests.unit.evaluation.planted_decision import planted
from tune import results as R

ROOT = Path(__file__).resolve().parents[3]
OBJ = ("engagement", "value", "diversity")


def _table() -> pd.DataFrame:
    # (engagement, value, diversity): rows 0-2 form the front, row 1 bulges (the knee), row 3 is dominated by 1
    objs = [(0.90, 0.50, 0.50), (0.85, 0.70, 0.60), (0.70, 0.75, 0.62), (0.80, 0.60, 0.55)]
    rows = []
    for i, (e, v, d) in enumerate(objs):
        m = {"engagement": e, "value": v, "diversity": d, "coverage": 0.1}
        rows.append(R.row_of("grid" if i < 2 else "nsga2", f"t{i}", RerankSetting(1 - 0.1 * i, 0.1 * i, 0.5, 20), m))
    rows.append(R.row_of("serving", "", RerankSetting(1.0, 1.0, 0.8, 100),
                         {"engagement": 0.5, "value": 0.5, "diversity": 0.5}))
    return R.mark_front(pd.DataFrame(rows), OBJ)


def test_front_knee_and_summary_on_a_known_table() -> None:
    t = _table()
    assert t["non_dominated"].tolist() == [True, True, True, False, False]
    assert t["knee"].tolist() == [False, True, False, False, False]
    s = R.summarize(t, OBJ)
    assert s["n_non_dominated"] == 3 and s["n_settings"] == 5
    assert set(s["hypervolume_by_searcher"]) == {"grid", "nsga2"}  # reference rows are not a searcher
    assert s["hypervolume"] >= max(s["hypervolume_by_searcher"].values())
    assert s["knee"]["trial_id"] == "t1"


def test_pick_knee_and_max_value_at_ctr() -> None:
    t = _table()
    assert R.pick(t, "knee") == 1
    assert R.pick(t, "max-value-at-ctr=0.8") == 1  # rows 0, 1, 3 reach 0.8; row 1 has the most value
    assert R.pick(t, "max-value-at-ctr=0.6") == 2
    with pytest.raises(UserError, match="best is 0.9000"):
        R.pick(t, "max-value-at-ctr=0.95")
    with pytest.raises(UserError):
        R.pick(t, "max-ctr")
    with pytest.raises(UserError):
        R.pick(t, "max-value-at-ctr=abc")


def test_serving_setting_reads_serve_config_defaults() -> None:
    from graphrec_ray.config import load_config
    from graphrec_ray.serving.config import ServeConfig

    cfg = load_config(ServeConfig, ROOT / "configs/serve.yaml")
    s = R.serving_setting(ROOT / "configs/serve_app.yaml", ROOT / "configs/serve.yaml")
    assert (s.w_engagement, s.w_value, s.lambda_diversity, s.pool_size) == (
        cfg.w_engagement, cfg.w_value, cfg.lambda_diversity, cfg.top_n_serve)


def test_written_serve_config_round_trips_and_never_overwrites_the_template(tmp_path: Path) -> None:
    from ray.serve.schema import ServeDeploySchema

    template = ROOT / "configs/serve_app.yaml"
    before = template.read_text()
    chosen = RerankSetting(0.3, 0.7, 0.45, 40)
    out = R.write_serve_config(template, tmp_path / "knee.yaml", chosen, run_dir=tmp_path / "run",
                               serve_yaml=ROOT / "configs/serve.yaml")
    doc = yaml.safe_load(out.read_text())
    ServeDeploySchema.model_validate(doc)  # still a valid Serve config for `serve deploy`
    assert doc["applications"][0]["args"]["run_dir"] == str((tmp_path / "run").resolve())
    back = R.serving_setting(out, ROOT / "configs/serve.yaml")
    assert back == chosen
    # a template that already has the reranking entry is updated in place, not duplicated
    again = R.write_serve_config(out, tmp_path / "again.yaml", RerankSetting(1.0, 0.0, 1.0, 10))
    deps = yaml.safe_load(again.read_text())["applications"][0]["deployments"]
    assert len([d for d in deps if d["name"] in R.RERANK_DEPLOYMENTS]) == 1
    assert deps[0]["user_config"] == {"w_engagement": 1.0, "w_value": 0.0, "lambda_diversity": 1.0, "top_n_serve": 10}
    with pytest.raises(UserError, match="never overwritten"):
        R.write_serve_config(template, template, chosen)
    assert template.read_text() == before


def test_compare_is_a_paired_difference_with_verdicts() -> None:
    ev = PolicyEvaluator(planted(), n_boot=200)
    diff = R.compare(ev, RerankSetting(0.5, 0.5, 0.3, 30), RerankSetting(0.5, 0.5, 1.0, 30))
    assert diff["diversity"]["verdict"] == "better"  # planted redundant head: MMR diversifies
    same = R.compare(ev, RerankSetting(0.5, 0.5, 1.0, 30), RerankSetting(0.5, 0.5, 1.0, 30))
    assert same["engagement"]["difference"] == 0.0 and same["engagement"]["verdict"] == "not significant"


def test_plot_and_outputs_are_written(tmp_path: Path) -> None:
    t = _table()
    files = R.write_outputs(t, R.summarize(t, OBJ), [tmp_path / "a"])
    assert sorted(f.name for f in files) == ["pareto.csv", "pareto_curve.png", "pareto_summary.json"]
    back = pd.read_csv(tmp_path / "a" / "pareto.csv")
    np.testing.assert_array_equal(back["non_dominated"].to_numpy(), t["non_dominated"].to_numpy())
    assert (tmp_path / "a" / "pareto_curve.png").stat().st_size > 10_000
