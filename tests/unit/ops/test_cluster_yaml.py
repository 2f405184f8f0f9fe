"""cluster.yaml against Ray's own cluster-launcher schema, and its doors closed by default."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]


def _schema() -> dict:
    import ray

    return json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())


def test_cluster_yaml_validates_against_rays_schema() -> None:
    """Regression (issue 13, item 8): cluster.yaml held a top-level `min_workers`, which Ray's schema rejects."""
    cfg = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    jsonschema.validate(cfg, _schema())
    misspelt = {**cfg, "head_start_ray_comands": cfg["head_start_ray_commands"]}
    with pytest.raises(jsonschema.ValidationError):  # the schema does catch unknown keys
        jsonschema.validate(misspelt, _schema())


def test_dashboard_and_jobs_api_bind_loopback() -> None:
    """Regression (issue 13, item 9): the head started the dashboard (and the Jobs API) on 0.0.0.0."""
    cfg = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    head = " ".join(cfg["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head and "0.0.0.0" not in head
    assert "--port=6380" in head  # 6379 is Redis's
