"""Relative paths in the Serve app's args resolve against the project, never the builder's working directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from graphrec_ray.errors import ConfigError, UserError


def _project(root: Path, replicas: int) -> Path:
    (root / "runs" / "demo").mkdir(parents=True)
    (root / "configs").mkdir()
    (root / "configs" / "serve.yaml").write_text(f"collocated:\n  num_replicas: {replicas}\n")
    return root


def test_relative_args_resolve_against_the_project_not_the_cwd(tmp_path: Path, monkeypatch) -> None:
    """Regression (issue 13, item 8): `run_dir: runs/demo` in configs/serve_app.yaml resolved against wherever
    `ray start` ran (Serve builds a config file's app in a worker there): DEPLOY_FAILED, or another folder's run.
    Here the working directory holds a decoy project; the app must bind the real one's run dir and config."""
    import serve_app.app as mod

    project = _project(tmp_path / "project", replicas=3)
    decoy = _project(tmp_path / "where_ray_start_ran", replicas=1)
    monkeypatch.setattr(mod, "PROJECT_ROOT", project)
    monkeypatch.chdir(decoy)
    app = mod.build_app({"run_dir": "runs/demo", "config": "configs/serve.yaml"})
    dep = app._bound_deployment
    assert dep.num_replicas == 3  # read project/configs/serve.yaml, not the decoy's
    assert dep.init_args[1] == str((project / "runs" / "demo").resolve())
    absolute = mod.build_app({"run_dir": str(decoy / "runs" / "demo"), "config": str(decoy / "configs/serve.yaml")})
    assert absolute._bound_deployment.num_replicas == 1 and absolute._bound_deployment.init_args[1] == str(
        (decoy / "runs" / "demo").resolve())


def test_a_missing_run_dir_is_refused_at_build_time_with_the_resolved_path(tmp_path: Path, monkeypatch) -> None:
    import serve_app.app as mod

    monkeypatch.setattr(mod, "PROJECT_ROOT", _project(tmp_path, replicas=2))
    with pytest.raises(UserError) as err:
        mod.build_app({"run_dir": "runs/nope"})
    msg = str(err.value)
    assert str(tmp_path / "runs" / "nope") in msg and "project root" in msg and "ray start" in msg
    with pytest.raises(ConfigError, match="not a file"):
        mod.build_app({"run_dir": "runs/demo", "config": "configs/serve_typo.yaml"})


def test_misspelt_app_args_are_refused() -> None:
    """A misspelt `run_dri` used to be dropped by pydantic, serving runs/demo instead."""
    from serve_app.app import AppArgs

    with pytest.raises(ValidationError, match="run_dri"):
        AppArgs.model_validate({"run_dri": "/data/runs/v7"})


def test_graphrec_serve_finds_the_default_config_from_another_directory(tmp_path: Path, monkeypatch) -> None:
    """`graphrec serve` run outside the project silently fell back to the defaults (no Redis cache): the default
    configs/serve.yaml is now also looked up in the project."""
    import serve_app.app as mod

    monkeypatch.setattr(mod, "PROJECT_ROOT", _project(tmp_path / "project", replicas=4))
    monkeypatch.chdir(tmp_path)
    assert mod.load_serve_config(mod.DEFAULT_CONFIG).collocated.num_replicas == 4
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "serve.yaml").write_text("collocated:\n  num_replicas: 5\n")
    assert mod.load_serve_config(mod.DEFAULT_CONFIG).collocated.num_replicas == 5  # the working directory's first
    with pytest.raises(ConfigError, match="not found"):
        mod.load_serve_config("configs/other.yaml")
    assert mod.load_serve_config(None) == mod.ServeConfig()  # None: the defaults
