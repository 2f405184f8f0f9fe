"""Serving metrics: own registry, per-stage histograms, cache hit ratio over known users, cold-start count."""

from __future__ import annotations

from prometheus_client import REGISTRY

from graphrec_ray.serving.metrics import ServingMetrics


def _value(text: str, name: str) -> float:
    return float(next(line for line in text.splitlines() if line.startswith(name)).split()[-1])


def test_counts_ratio_and_histograms() -> None:
    m = ServingMetrics()
    m.observe_recommend(1.0, 2.0, 3.0, 7.0, cache_hit=True, cold_start=False)
    m.observe_recommend(1.0, 2.0, 3.0, 30.0, cache_hit=False, cold_start=False)
    m.observe_recommend(1.0, 2.0, 3.0, 7.0, cache_hit=False, cold_start=True)  # not a cache lookup
    m.count_request("recommend", 200)
    m.count_request("recommend", 400)
    text = m.render().decode()
    assert _value(text, "graphrec_cache_hit_ratio") == 0.5
    assert _value(text, "graphrec_cold_start_total") == 1.0
    assert _value(text, 'graphrec_cache_lookups_total{result="hit"}') == 1.0
    assert _value(text, 'graphrec_requests_total{endpoint="recommend",status="400"}') == 1.0
    assert _value(text, 'graphrec_stage_latency_seconds_bucket{le="0.008",stage="total"}') == 2.0
    assert _value(text, 'graphrec_stage_latency_seconds_count{stage="ranking"}') == 3.0


def test_private_registry_so_two_instances_do_not_clash() -> None:
    a, b = ServingMetrics(), ServingMetrics()  # the global registry would raise "Duplicated timeseries"
    a.cold_start.inc()
    assert "graphrec_cold_start_total 0.0" in b.render().decode()
    assert REGISTRY.get_sample_value("graphrec_cold_start_total") is None
