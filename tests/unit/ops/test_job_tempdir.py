"""Jobs under ``ray job submit --working-dir`` run in Ray's temporary package folder: nothing they keep may land there.

Regression: `ray job submit -- python -m tune.pareto --run-dir /abs/run` wrote its outputs/ copy (and, before the
tracking-URI check, its MLflow store) into `/tmp/ray/session_*/runtime_resources/...`, lost with the job."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphrec_ray.errors import UserError
from jobs.common import _set_tracking_uri, in_ray_job_tempdir, outputs_copy_dir


@pytest.fixture
def job_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cwd = tmp_path / "session_x" / "runtime_resources" / "working_dir_files" / "_ray_pkg_abc"
    cwd.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    return cwd


def test_relative_outputs_copy_is_skipped_inside_a_job_folder(job_cwd: Path, capsys: pytest.CaptureFixture) -> None:
    assert in_ray_job_tempdir("outputs")
    assert outputs_copy_dir("outputs") is None
    assert "run directory holds the files" in capsys.readouterr().out
    assert not (job_cwd / "outputs").exists()


def test_absolute_outputs_copy_is_kept_inside_a_job_folder(job_cwd: Path, tmp_path: Path) -> None:
    target = tmp_path / "keep" / "outputs"
    assert outputs_copy_dir(str(target)) == target


def test_outputs_copy_outside_a_job_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert not in_ray_job_tempdir("outputs")
    assert outputs_copy_dir("outputs") == Path("outputs")
    assert outputs_copy_dir("") is None


def test_mlflow_refuses_a_default_store_inside_a_job_folder(job_cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(UserError, match="MLFLOW_TRACKING_URI"):
        _set_tracking_uri()
    assert not (job_cwd / "mlruns").exists()


def test_experiment_created_inside_a_job_keeps_artifacts_beside_the_sqlite_store(
        job_cwd: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: the `pareto` experiment created by a `ray job submit` run had its artifact root in the job's
    temporary folder (MLflow's default ./mlruns of the working directory)."""
    import mlflow

    from jobs.common import mlflow_run

    store = tmp_path / "store"
    store.mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}/mlflow.db")
    (job_cwd / "a.txt").write_text("x")
    with mlflow_run("fresh-experiment", "r", {"a": 1}) as run:
        mlflow.log_artifact(str(job_cwd / "a.txt"))
    uri = mlflow.get_run(run.info.run_id).info.artifact_uri
    assert "runtime_resources" not in uri
    assert uri.startswith((store / "artifacts").as_uri())
    assert not (job_cwd / "mlruns").exists()


def test_logged_config_params_never_carry_secrets() -> None:
    """Regression guard: `cache.password` (Redis) and the reload token must not reach MLflow params when a job logs
    a config that holds them."""
    from jobs.common import _flatten

    flat = _flatten({"cache": {"password": "s3cret", "url": "redis://x"}, "reload_token": "t0k", "token_env": None,
                     "lr": 0.1})
    assert flat == {"cache.password": "***", "cache.url": "redis://x", "reload_token": "***", "token_env": None,
                    "lr": 0.1}
