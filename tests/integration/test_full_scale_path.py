"""The full-scale path, scaled down (issue 14): the ``full`` preset's sizes divided by 64 go through the whole
pipeline (simulate → preprocess → train-retrieval → build-index → train-ranker → serve smoke) the way
``benchmarks/pipeline_full.py`` runs it, and every stage's time, peak memory and throughput, and the retrieval loop's
seconds per step beside the step kernel's, are written to the benchmark's files.

Kept to about a minute on 2 cores: one embedding model (baselines: popularity only), one ranker epoch, 3 requests.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Iterator

import pytest

from benchmarks.pipeline_full import STAGES, extrapolate, run_scale, write
from graphrec_ray.ids import IdMap
from graphrec_ray.layout import RunLayout

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DIV = 64  # 7,176 x 10,728 -> 112 x 168 users x items, ~3.4k big_matrix rows
FAST = ["retrieval.baselines=[popularity]", "ranking.epochs=1"]


@pytest.fixture()
def no_serve_left(ray_cluster: None) -> Iterator[None]:
    """The smoke test starts Serve on the shared test cluster; stop it so later modules get their ports."""
    yield
    from ray import serve

    serve.shutdown()


def test_full_preset_divided_runs_every_stage_and_records_its_figures(no_serve_left: None, tmp_path: Path) -> None:
    r = run_scale(DIV, tmp_path, serve_smoke=3, extra=FAST, sample_s=0.5)
    # the full preset's sizes divided by DIV, density kept
    layout = RunLayout(tmp_path / f"run_div{DIV}")
    assert r["n_users"] == 112 and r["n_items"] == 168
    assert 0 < len(IdMap.load(layout.user_map)) <= 112 and 0 < len(IdMap.load(layout.item_map)) <= 168
    assert 2_000 < r["big_matrix_rows"] < 6_000  # 112 * 168 * 0.222 exposures, plus repeats and duplicates
    assert list(r["stages"]) == list(STAGES)  # every stage ran, in order
    for name, s in r["stages"].items():
        assert s["seconds"] > 0, name
        assert s["throughput"] > 0, name
    for name in ("preprocess", "train-retrieval", "train-ranker"):  # long enough for the 0.5 s sampler
        s = r["stages"][name]
        assert s["peak_rss_sum_mb"] >= s["peak_pss_sum_mb"] > 0 and s["processes"] > 1, name  # Ray's processes
    assert set(r["retrieval_models"]) == {"lightgcn_ips", "popularity"}
    m = r["retrieval_models"]["lightgcn_ips"]
    assert m["steps_run"] > 0 and m["select_train_s"] > 0 and m["refit_train_s"] > 0
    loop = r["retrieval_loop"]
    assert loop["select_step_s"] > 0 and r["kernel"]["kernel_step_s"] > 0
    assert loop["select_over_kernel"] == pytest.approx(loop["select_step_s"] / r["kernel"]["kernel_step_s"])

    out = tmp_path / "pipeline_full.json"
    write({"runs": {str(DIV): r}, "extrapolation": extrapolate({str(DIV): r})}, out)
    assert json.loads(out.read_text())["runs"][str(DIV)]["stages"]["train-retrieval"]["seconds"] > 0
    rows = list(csv.DictReader(out.with_suffix(".csv").open()))
    assert [row["stage"] for row in rows] == list(STAGES) and {row["kind"] for row in rows} == {"measured"}


def test_extrapolation_recovers_a_known_linear_cost() -> None:
    """Times that follow t = 2 s + 10 s per million rows exactly give back 2 + 10 · rows(1) s at scale 1, where
    rows(1) = rows(N) · N² of the largest measured size, and the result says it is an extrapolation."""
    def fake(div: int) -> dict:
        rows = 12_000_000 // div ** 2
        return {"big_matrix_rows": rows, "stages": {"simulate": {"seconds": 2.0 + 10.0 * rows / 1e6}},
                "retrieval_loop": {}, "kernel": {}, "retrieval_models": {}, "batch_size": 2048}

    ex = extrapolate({"16": fake(16), "8": fake(8), "4": fake(4)})
    assert "EXTRAPOLATION" in ex["label"] and ex["big_matrix_rows_at_1"] == 12_000_000
    assert ex["stages"]["simulate"]["seconds_at_1"] == pytest.approx(2.0 + 10.0 * 12.0)
    assert ex["stages"]["simulate"]["fixed_s"] == pytest.approx(2.0)


def test_retrieval_extrapolation_uses_the_measured_schedule_and_skips_baselines_at_scale_1() -> None:
    """Issue 14: scale 1's retrieval estimate takes the step budget of the run's own schedule (steps_per_epoch 25:
    1,500 steps at 0.8M positives, not the fixed batch's 23,438) and leaves out the embedding baselines the stage
    skips above baselines_max_positives. Known answer: a primary that ran its whole budget plus a refit of the same
    length, 0.1 µs per step per positive, no validation or fixed cost -> 1,500 * 0.08 s."""
    def fake(div: int) -> dict:
        pos = 800_000 // div ** 2
        model = {"budget_steps": 1500, "steps_run": 750, "refit_steps": 750, "select_train_s": 1.0,
                 "select_val_s": 0.0, "other_s": 0.0}
        return {"big_matrix_rows": 10 * pos, "stages": {}, "batch_size": 2048,
                "kernel": {"positives": pos, "kernel_step_s": 1e-7 * pos},
                "retrieval_loop": {"model": "lightgcn_ips", "select_step_s": 1e-7 * pos},
                "retrieval_models": {"lightgcn_ips": model, "mf": dict(model), "popularity": {}},
                "retrieval_schedule": {"batch_size": 2048, "epochs": 60, "min_steps": 50, "max_steps": 0,
                                       "max_evals": 40, "steps_per_epoch": 25, "baselines_max_positives": 100_000}}

    ret = extrapolate({"4": fake(4), "2": fake(2)})["stages"]["train-retrieval"]
    assert ret["positives_at_1"] == 800_000
    assert (ret["budget_steps_at_1"], ret["global_batch_at_1"]) == (1500, 32_000)
    assert ret["fixed_batch_budget_steps_at_1"] == round(60 * 800_000 / 2048)  # what the fixed batch would take
    assert "skipped_at_1" in ret["models"]["mf"] and "popularity" not in ret["models"]
    assert ret["seconds_at_1"] == pytest.approx(1500 * 0.08)
    fixed = fake(2)
    fixed["retrieval_schedule"] = {**fixed["retrieval_schedule"], "steps_per_epoch": 0, "baselines_max_positives": 0}
    old = extrapolate({"4": fake(4), "2": fixed})["stages"]["train-retrieval"]
    assert old["budget_steps_at_1"] == round(60 * 800_000 / 2048) and "steps_at_1" in old["models"]["mf"]
