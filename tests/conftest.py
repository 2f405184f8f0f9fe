"""Test-wide fixtures: an isolated MLflow store per test, Ray usage stats off."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture(autouse=True)
def _isolated_mlflow(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test logs to a throw-away local MLflow store, never to ./mlruns."""
    store = tmp_path_factory.mktemp("mlruns")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"file:{store}")
    # MLflow 3.x refuses the file store unless allowed; it needs no database migration, so tests stay fast.
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
