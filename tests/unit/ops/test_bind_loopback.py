"""Serve's HTTP proxy and a local cluster's dashboard (Jobs API) listen on 127.0.0.1 unless configured otherwise."""

from __future__ import annotations

import inspect
from pathlib import Path

import yaml

from graphrec_ray.config import load_config
from graphrec_ray.serving.config import ServeConfig

ROOT = Path(__file__).resolve().parents[3]


def test_serve_binds_loopback_by_default() -> None:
    """`graphrec serve` (ServeConfig.http_host, also from configs/serve.yaml) and `serve run
    configs/serve_app.yaml` (http_options.host) listen on loopback; 0.0.0.0 is an explicit choice."""
    assert ServeConfig().http_host == "127.0.0.1"
    assert load_config(ServeConfig, ROOT / "configs/serve.yaml").http_host == "127.0.0.1"
    doc = yaml.safe_load((ROOT / "configs/serve_app.yaml").read_text())
    assert doc["http_options"]["host"] == "127.0.0.1"
    src = inspect.getsource(__import__("jobs.serve", fromlist=["main"]).main)
    assert 'serve.start(http_options={"host": cfg.http_host' in src


def test_local_cluster_dashboard_is_off_or_on_loopback() -> None:
    """Jobs start private clusters with no dashboard unless GRAPHREC_DASHBOARD=1, and Ray's default host for it
    (and its Jobs API, which runs arbitrary code) is loopback."""
    import ray

    from jobs import common

    assert inspect.signature(ray.init).parameters["dashboard_host"].default == "127.0.0.1"
    src = inspect.getsource(common.init_ray)
    assert "dashboard_host" not in src and 'os.environ.get("GRAPHREC_DASHBOARD") == "1"' in src
