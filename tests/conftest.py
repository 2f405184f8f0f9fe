"""Test-wide fixtures: an isolated MLflow store per test, a Redis for the cache tests, Ray usage stats off."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from typing import Iterator

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture(autouse=True)
def _isolated_mlflow(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test logs to a throw-away local MLflow store, never to ./mlruns."""
    store = tmp_path_factory.mktemp("mlruns")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"file:{store}")
    # MLflow 3.x refuses the file store unless allowed; it needs no database migration, so tests stay fast.
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")


def _redis_answers(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The Redis the cache tests use: the machine's on 127.0.0.1:6379 when it answers, else a private
    ``redis-server`` started here on a free port (no persistence), else the tests skip with one line."""
    if _redis_answers(6379):
        yield "redis://127.0.0.1:6379/0"
        return
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("no Redis answers on 127.0.0.1:6379 and no redis-server is installed to start one")
    from tests.net import free_port

    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10.0
        while not _redis_answers(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.skip(f"could not start a private redis-server on port {port}")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
