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


def test_serve_app_yaml_is_a_valid_serve_config_for_the_builder(tmp_path: Path, monkeypatch) -> None:
    from ray.serve.schema import ServeDeploySchema

    import serve_app.app as mod
    from serve_app.app import AppArgs, build_app

    # the builder refuses a run_dir that does not exist: give it a project whose runs/demo does (fresh clones
    # have none) and the real configs/
    (tmp_path / "runs" / "demo").mkdir(parents=True)
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    monkeypatch.setattr(mod, "PROJECT_ROOT", tmp_path)
    doc = yaml.safe_load((ROOT / "configs/serve_app.yaml").read_text())
    schema = ServeDeploySchema.model_validate(doc)
    app_cfg = schema.applications[0]
    assert app_cfg.import_path == "serve_app.app:build_app"
    args = AppArgs.model_validate(app_cfg.args)
    app = build_app(args)  # binds only: nothing is loaded until replicas start
    assert app._bound_deployment.name == "Recommender"  # the default topology


def test_deployment_options_have_one_source() -> None:
    """Regression (issue 9 item 5): options lived both in DeploymentSpec defaults and in serve_app.yaml's
    `deployments:` block (which wins in Serve), so changing ServeConfig silently did nothing."""
    from serve_app.app import build_graph

    doc = yaml.safe_load((ROOT / "configs/serve_app.yaml").read_text())
    assert all("deployments" not in a for a in doc["applications"])
    for topology in ("collocated", "graph"):
        cfg = load_config(ServeConfig, None, [f"topology={topology}", "collocated.num_replicas=3",
                                              "ranking.num_cpus=0.4", "lambda_diversity=0.3"])
        app = build_graph(cfg, ROOT / "runs/demo")
        top = app._bound_deployment
        deps = {top.name: top} | {a._bound_deployment.name: a._bound_deployment for a in top.init_args[:3]
                                  if hasattr(a, "_bound_deployment")}
        if topology == "collocated":
            assert set(deps) == {"Recommender"} and top.num_replicas == 3
            assert top.user_config["lambda_diversity"] == 0.3
        else:
            assert set(deps) == {"Ingress", "Retrieval", "Ranking", "Reranking"}
            assert deps["Ranking"].ray_actor_options["num_cpus"] == 0.4
            assert deps["Reranking"].user_config["lambda_diversity"] == 0.3
