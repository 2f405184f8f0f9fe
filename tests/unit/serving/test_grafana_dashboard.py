"""The Grafana dashboard queries only metrics the code defines, and shows every one of them.

The dashboard (``configs/grafana/graphrec_serving.json``) reads Ray's metrics export, where a metric ``name`` of
:data:`graphrec_ray.serving.telemetry.SPECS` appears as ``ray_name`` (counters ``ray_name_total``, histograms
``ray_name_bucket``/``_count``/``_sum``); ``serve_app.metrics_ray.RayBackend`` registers exactly those names.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from graphrec_ray.serving.telemetry import RAY_PREFIX, SPECS, exported_series

DASHBOARD = Path(__file__).resolve().parents[3] / "configs" / "grafana" / "graphrec_serving.json"
NAME = re.compile(r"\b(ray_[a-zA-Z_:][a-zA-Z0-9_:]*)")


def _exprs(doc: dict) -> list[str]:
    out = [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]
    out += [v.get("query", "") for v in doc.get("templating", {}).get("list", []) if v.get("type") == "query"]
    return out


def test_every_queried_metric_exists_in_code() -> None:
    doc = json.loads(DASHBOARD.read_text())
    exprs = _exprs(doc)
    assert len(exprs) >= 10
    queried = {n for e in exprs for n in NAME.findall(e)}
    assert queried, "the dashboard queries no ray_ metric"
    assert queried <= exported_series(), f"not defined in graphrec_ray/serving/telemetry.py: {queried - exported_series()}"


def test_every_metric_of_the_catalogue_is_on_the_dashboard() -> None:
    queried = {n for e in _exprs(json.loads(DASHBOARD.read_text())) for n in NAME.findall(e)}
    missing = [s.name for s in SPECS if not set(s.series(RAY_PREFIX)) & queried]
    assert missing == []


def test_ray_backend_registers_exactly_the_catalogue() -> None:
    from serve_app.metrics_ray import RayBackend

    assert set(RayBackend()._metrics) == {s.name for s in SPECS}


def test_checker_catches_a_misspelled_metric() -> None:
    """The check can fail: a typo in a query is reported."""
    doc = {"panels": [{"targets": [{"expr": "rate(ray_graphrec_request_total[1m])"}]}]}
    queried = {n for e in _exprs(doc) for n in NAME.findall(e)}
    assert queried - exported_series() == {"ray_graphrec_request_total"}
