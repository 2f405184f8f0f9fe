"""configs/serve.yaml and configs/serve_app.yaml load, and the builder binds the graph they name (no Ray start)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from graphrec_ray.config import load_config
from graphrec_ray.errors import ConfigError
from graphrec_ray.serving.config import ServeConfig

ROOT = Path(__file__).resolve().parents[3]


def test_serve_yaml_loads_and_rejects_unknown_keys(tmp_path: Path) -> None:
    cfg = load_config(ServeConfig, ROOT / "configs/serve.yaml")
    assert cfg.cache.url.startswith("redis://")
    bad = tmp_path / "bad.yaml"
    bad.write_text("ranking:\n  num_cpu: 0.5\n")
    with pytest.raises(ConfigError, match="num_cpu"):
        load_config(ServeConfig, bad)
    with pytest.raises(ConfigError):
        load_config(ServeConfig, None, ["k_default=500"])  # above k_max


def test_deployment_options_follow_config() -> None:
    cfg = load_config(ServeConfig, None, ["ranking.autoscaling=true", "ranking.max_replicas=3",
                                          "retrieval.num_cpus=0.5", "retrieval.num_replicas=2"])
    rank = cfg.ranking.serve_options()
    assert "num_replicas" not in rank and rank["autoscaling_config"]["max_replicas"] == 3
    assert cfg.retrieval.serve_options() == {"ray_actor_options": {"num_cpus": 0.5}, "max_ongoing_requests": 64,
                                             "num_replicas": 2}


def test_serve_app_yaml_is_a_valid_serve_config_for_the_builder() -> None:
    from ray.serve.schema import ServeDeploySchema

    from serve_app.app import AppArgs, build_app

    doc = yaml.safe_load((ROOT / "configs/serve_app.yaml").read_text())
    schema = ServeDeploySchema.model_validate(doc)
    app_cfg = schema.applications[0]
    assert app_cfg.import_path == "serve_app.app:build_app"
    for d in app_cfg.deployments:
        assert 0 < d.ray_actor_options.num_cpus < 1  # fractional CPUs
    args = AppArgs.model_validate(app_cfg.args)
    app = build_app(args)  # binds only: nothing is loaded until replicas start
    ingress = app._bound_deployment
    names = {ingress.name} | {a._bound_deployment.name for a in ingress.init_args[:3]}
    assert names == {d.name for d in app_cfg.deployments}
