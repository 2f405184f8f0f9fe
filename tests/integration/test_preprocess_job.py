"""The Ray Data preprocessing job on the shared local cluster equals the plain pass, and accounts for every row."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphrec_ray.manifest import read_manifest
from graphrec_ray.preprocess.config import PreprocessConfig
from graphrec_ray.preprocess.stage import preprocess_local
from graphrec_ray.sources.simulator import SimulatorConfig, simulate
from jobs import preprocess as job

pytestmark = pytest.mark.integration
OUTPUTS = ("train", "val", "test", "eval_small", "quarantine", "item_propensity", "user_map", "item_map")
BROKEN = ["3,77,abc,1000,2020-07-06 10:00:00.000,20200706,1594000800.0,0.5",  # bad_type
          "3,77,100",  # malformed_row
          "3,77,-100,1000,2020-07-06 10:00:01.000,20200706,1594000801.0,-0.1"]  # negative_duration


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("sim")
    simulate(SimulatorConfig(preset="tiny", seed=7), d, progress=False)
    with open(d / "big_matrix.csv", "a") as f:
        f.write("\n".join(BROKEN) + "\n")
    return d


def test_ray_job_equals_plain_pass_and_accounts_for_every_row(ray_cluster: None, data_dir: Path,
                                                             tmp_path: Path) -> None:
    # small shards: several Ray Data tasks per source, blocks of both sources in one execution
    cfg = PreprocessConfig(data_dir=str(data_dir), cache_dir=str(tmp_path / "cache"), cache_shard_rows=200)
    summary = job.run(cfg, tmp_path / "ray_run", progress=False, track=False)
    local = tmp_path / "local_run" / "preprocess"
    preprocess_local(cfg, local)
    ray_out = tmp_path / "ray_run" / "preprocess"
    for name in OUTPUTS:
        assert (ray_out / f"{name}.parquet").read_bytes() == (local / f"{name}.parquet").read_bytes(), name
    assert (ray_out / "manifest.json").read_bytes() == (local / "manifest.json").read_bytes()

    m = read_manifest(ray_out)
    total_in = total_out = 0
    for src in m["sources"].values():
        removed = sum(src["rows_removed_by_policy"].values())
        assert src["rows_in"] == src["rows_kept"] + src["rows_quarantined"] + removed
        assert sum(src["quarantine_reasons"].values()) == src["rows_quarantined"]
        total_in += src["rows_in"]
        total_out += src["rows_kept"] + src["rows_quarantined"] + removed
    assert total_in == total_out == sum(1 for _ in open(data_dir / "big_matrix.csv")) - 1 + \
        sum(1 for _ in open(data_dir / "small_matrix.csv")) - 1
    big = m["sources"]["big_matrix.csv"]["quarantine_reasons"]
    assert big["bad_type"] >= 1 and big["malformed_row"] == 1 and big["negative_duration"] >= 1
    assert m["rows"]["train"] + m["rows"]["val"] + m["rows"]["test"] == m["sources"]["big_matrix.csv"]["rows_kept"]
    assert summary["rows"] == m["rows"]
    # issue 10 defaults through Ray Data too: per-user split, small_matrix rows without time kept and counted
    small_no_time = sum(1 for ln in open(data_dir / "small_matrix.csv") if ",,,," in ln)
    assert m["split"]["kind"] == "per_user" and m["split"]["eval_users"]["eval_small"]["without_train"] == 0
    assert m["split"]["eval_small_rows_without_timestamp"] == small_no_time > 0
    assert "missing_timestamp" not in m["sources"]["small_matrix.csv"]["quarantine_reasons"]
    assert m["side_tables"]["item_categories.csv"]["interaction_videos_missing"] == 0


def test_cli_entry_point_logs_to_mlflow(ray_cluster: None, data_dir: Path, tmp_path: Path) -> None:
    import mlflow


    rc = job.main(["--config", "configs/preprocess.yaml", "--data-dir", str(data_dir),
                   "--run-dir", str(tmp_path / "cli_run"), f"cache_dir={tmp_path / 'cache'}", "value_clip=3.0"])
    assert rc == 0
    m = read_manifest(tmp_path / "cli_run" / "preprocess")
    assert m["config"]["value_clip"] == 3.0 and m["config"]["data_dir"] == str(data_dir)
    runs = mlflow.search_runs(experiment_names=["preprocess"])
    assert len(runs) == 1 and runs["metrics.rows_train"].iloc[0] == m["rows"]["train"]
