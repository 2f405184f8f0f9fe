"""kuberay.yaml: a RayService whose serveConfigV2 is `serve build`'s output, checked strictly (issue 13)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from graphrec_ray.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]


def _manifest() -> dict:
    return yaml.safe_load((ROOT / "kuberay.yaml").read_text())


def test_serve_build_works_and_the_checked_in_manifest_is_its_regeneration() -> None:
    """Regression (issue 13, item 8): `serve build serve_app.app:build_app` failed (a builder, not an
    Application), so no Serve config could be generated. `serve build serve_app.app:app` now builds the default
    application, and kuberay.yaml must be exactly what `graphrec kuberay` makes from that output today."""
    from jobs.kuberay import render, serve_build

    built = serve_build()  # Ray's own CLI in a subprocess
    (app,) = built["applications"]
    assert app["import_path"] == "serve_app.app:app"
    assert [d["name"] for d in app["deployments"]] == ["Recommender"]
    assert (ROOT / "kuberay.yaml").read_text() == render(built=built), \
        "kuberay.yaml is stale: run `graphrec kuberay` and commit it"


def test_manifest_is_a_rayservice_whose_serve_config_validates_with_no_unknown_keys() -> None:
    from ray.serve.schema import ServeDeploySchema

    from serve_app.app import AppArgs
    from serve_app.config_check import check_serve_config

    doc = _manifest()
    assert (doc["apiVersion"], doc["kind"]) == ("ray.io/v1", "RayService")
    assert doc["spec"]["rayClusterConfig"]["rayVersion"] == __import__("ray").__version__
    config = yaml.safe_load(doc["spec"]["serveConfigV2"])
    check_serve_config(config)
    (app,) = ServeDeploySchema.model_validate(config).applications
    assert app.import_path == "serve_app.app:build_app"
    args = AppArgs.model_validate(app.args)
    assert Path(args.run_dir).is_absolute() and Path(args.config).is_absolute()  # no cwd-dependent paths
    deps = {d.name: d for d in app.deployments}
    assert deps["Recommender"].num_replicas >= 2  # survives one replica's restart


def test_unknown_keys_are_refused_where_serve_drops_them() -> None:
    """Serve's schema ignores misspelt keys (the deployment silently runs on defaults); the check names them."""
    from ray.serve.schema import ServeDeploySchema

    from serve_app.config_check import check_serve_config

    good = yaml.safe_load(_manifest()["spec"]["serveConfigV2"])
    bad = copy.deepcopy(good)
    app = bad["applications"][0]
    dep = app["deployments"][0]
    dep["num_replica"] = dep.pop("num_replicas")
    dep["ray_actor_options"]["num_cpu"] = 1
    dep["user_config"]["lamda_diversity"] = 0.3
    app["args"]["run_dri"] = "/elsewhere"
    bad["http_options"]["hots"] = "0.0.0.0"
    ServeDeploySchema.model_validate(bad)  # Ray's own validation lets every one of them through
    with pytest.raises(ConfigError) as err:
        check_serve_config(bad)
    for key in ("applications[0].deployments[0].num_replica", "ray_actor_options.num_cpu",
                "user_config.lamda_diversity", "applications[0].args.run_dri", "http_options.hots"):
        assert key in str(err.value)
    bad = copy.deepcopy(good)
    bad["applications"][0]["deployments"][0]["num_replicas"] = 0
    with pytest.raises(ConfigError, match="num_replicas"):
        check_serve_config(bad)


def test_serve_app_yaml_has_no_unknown_keys() -> None:
    from serve_app.config_check import check_serve_config

    check_serve_config(yaml.safe_load((ROOT / "configs/serve_app.yaml").read_text()))


def test_importing_the_app_module_builds_nothing() -> None:
    """`app` exists for `serve build` but is built on access, never at import (STYLE: nothing at import)."""
    import serve_app.app as mod

    assert "app" not in vars(mod)
    assert mod.app._bound_deployment.name == "Recommender"
    assert "app" not in vars(mod)


def test_generator_defaults_are_the_checked_in_ones_and_paths_are_checked() -> None:
    import inspect

    from graphrec_ray.errors import UserError
    from jobs.kuberay import DEFAULTS, serve_config

    params = inspect.signature(__import__("jobs.kuberay", fromlist=["render"]).render).parameters
    assert {k: v for k, (v, _) in DEFAULTS.items()} == {k: params[k].default for k in DEFAULTS}
    built = {"applications": [{"name": "app1", "import_path": "serve_app.app:app", "deployments": []}]}
    for run_dir, project in (("runs/demo", "/home/ray/graphrec"), ("/data/runs/demo", "/home/ray/graphrec"),
                             ("/mnt/graphrec/runs/demo", "graphrec")):
        with pytest.raises(UserError):
            serve_config(built, "graphrec", run_dir, project)
