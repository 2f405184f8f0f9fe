"""``graphrec serve`` fails early with one-line user errors, before starting Ray."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphrec_ray.errors import DataError, UserError
from jobs.cli import main as cli_main
from jobs.serve import main


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


def test_refuses_a_port_another_program_listens_on() -> None:
    """Regression (issue 13, item 3): a second `graphrec serve` on a busy port started without error and Ray's
    proxy shared the port, taking half the traffic. With no Serve on this cluster, a busy port is refused."""
    import socket

    from jobs.serve import check_deployable

    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        with pytest.raises(UserError, match=f"port {port}"):
            check_deployable("graphrec", set(), False, "127.0.0.1", port, replace=False)
        # Serve already running on this cluster: its own proxy holds the port, which is fine
        check_deployable("graphrec", set(), True, "127.0.0.1", port, replace=False)
    with pytest.raises(UserError, match="already running"):
        check_deployable("graphrec", {"graphrec"}, True, "127.0.0.1", port, replace=False)
    check_deployable("graphrec", {"graphrec"}, True, "127.0.0.1", port, replace=True)


def test_local_ray_never_joins_another_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bare ray.init() joins the newest `ray start` cluster on the machine; jobs start a private one."""
    import ray

    from jobs.common import init_ray

    seen: dict = {}
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kw: seen.update(kw))
    init_ray(None)
    assert seen["address"] == "local"
    init_ray("127.0.0.1:6380")
    assert seen["address"] == "127.0.0.1:6380"
