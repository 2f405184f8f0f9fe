"""Regression (issue 13, a quiet terminal): the first MLflow run of a demo printed MLflow's and alembic's INFO
lines about creating and migrating the SQLite store ("Creating initial MLflow database tables...", one line per
migration) between the stage progress bars. They stay out unless --verbose (GRAPHREC_VERBOSE=1)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = """
from dataclasses import dataclass
from jobs.common import mlflow_run

@dataclass(frozen=True)
class C:
    a: int = 1

with mlflow_run("quiet", "r", C()):
    pass
print("done")
"""


@pytest.mark.parametrize("verbose", ["0", "1"])
def test_a_new_store_creates_its_tables_silently_unless_verbose(tmp_path: Path, verbose: str) -> None:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db", "GRAPHREC_VERBOSE": verbose,
           "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120, check=True)
    text = out.stdout + out.stderr
    assert "done" in out.stdout
    assert ("database tables" in text) == (verbose == "1"), text
