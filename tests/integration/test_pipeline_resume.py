"""`graphrec demo` is resumable: a re-submit of a finished pipeline skips every stage (Ray starts only when a stage
runs), a
stage cut short reruns from that stage, and --force reruns one stage (issue 13, item 4: a re-submit re-ran every
stage, 77.7 s vs 106.3 s for the first run)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from graphrec_ray.layout import RunLayout
from graphrec_ray.stage_key import mark_started
from jobs.pipeline import FORCEABLE, run, split_overrides

pytestmark = pytest.mark.integration

FAST = ["simulate.preset=tiny", "retrieval.dim=16", "retrieval.baselines=[popularity]", "retrieval.epochs=2",
        "ranking.epochs=1", "ranking.expert_hidden=[16]", "ranking.tower_hidden=[8]"]


@pytest.fixture()
def no_serve_left(ray_cluster: None) -> Iterator[None]:
    """The smoke test starts Serve's proxy (port 8000) on the shared test cluster; stop it afterwards so later
    modules' Serve fixtures get the ports they ask for."""
    yield
    from ray import serve

    serve.shutdown()


def test_resubmit_skips_finished_stages_and_resumes_a_cut_stage(no_serve_left: None, tmp_path: Path) -> None:
    run_dir, data_dir = tmp_path / "run", tmp_path / "data"
    first = run(run_dir, data_dir, split_overrides(FAST), serve_smoke=3)
    assert first["skipped"] == [] and set(first["seconds"]) >= {"preprocess", "train-retrieval", "train-ranker"}
    # MLflow lineage (issue 13, item 7): one parent run for the pipeline, a child per stage with its params
    import mlflow

    children = mlflow.search_runs(search_all_experiments=True,
                                  filter_string=f"tags.mlflow.parentRunId = '{first['mlflow_run_id']}'")
    assert {"preprocess", "retrieval", "build_index", "ranking"} <= set(children["tags.stage"])
    assert children.filter(like="params.").notna().any(axis=1).all()  # every child has its params

    again = run(run_dir, data_dir, split_overrides(FAST), serve_smoke=3)
    assert again["skipped"] == list(FORCEABLE) and again["seconds"] == {}

    mark_started(RunLayout(run_dir).ranking)  # the ranker stage was killed mid-way
    resumed = run(run_dir, data_dir, split_overrides(FAST), serve_smoke=3)
    assert "train-ranker" in resumed["seconds"] and "train-ranker" not in resumed["skipped"]
    assert {"preprocess", "train-retrieval", "build-index"} <= set(resumed["skipped"])
    # the smoke test and the sweep rerun only if the retrained ranker differs (it is seeded, so usually not)
    assert set(resumed["seconds"]) <= {"train-ranker", "serve-smoke", "pareto"}

    forced = run(run_dir, data_dir, split_overrides(FAST), serve_smoke=0, force=("build-index",))
    assert set(forced["seconds"]) == {"build-index"}
