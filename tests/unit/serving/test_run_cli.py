"""``graphrec serve`` fails early with one-line user errors, before starting Ray."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphrec_ray.errors import DataError, UserError
from jobs.cli import main as cli_main
from serve_app.run import main


def test_missing_run_dir_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="run directory not found"):
        main(["--run-dir", str(tmp_path / "nope"), "--smoke", "1"])


def test_incomplete_run_dir_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "preprocess").mkdir()
    with pytest.raises(DataError, match="servable"):
        main(["--run-dir", str(tmp_path), "--smoke", "1"])


def test_cli_prints_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli_main(["serve", "--run-dir", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("graphrec serve: error: run directory not found") and "\n" not in err


def test_bad_override_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="lambda_diversity"):
        main(["--run-dir", str(tmp_path), "lambda_diversity=2.0"])
