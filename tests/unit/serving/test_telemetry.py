"""Serving metrics: own registry, per-stage histograms, cache hit ratio over known users, cold-start count."""

from __future__ import annotations

from prometheus_client import REGISTRY

from graphrec_ray.serving.telemetry import ServingMetrics


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


class ListBackend:
    """A second backend that keeps every record (stands in for Ray's export)."""

    def __init__(self) -> None:
        self.records: list[tuple[str, float, dict]] = []

    def record(self, spec, value, tags) -> None:  # noqa: ANN001 - MetricsBackend protocol
        self.records.append((spec.name, value, dict(tags)))


def test_every_record_reaches_every_backend() -> None:
    extra = ListBackend()
    m = ServingMetrics((extra,))
    m.count_request("recommend", 503)
    m.reloads.labels(status="denied").inc()
    assert extra.records == [("graphrec_requests", 1.0, {"endpoint": "recommend", "status": "503"}),
                             ("graphrec_reloads", 1.0, {"status": "denied"})]
    assert _value(m.render().decode(), 'graphrec_reloads_total{status="denied"}') == 1.0


def test_cache_events_add_only_the_increase_and_breaker_state_is_a_number() -> None:
    m = ServingMetrics()
    m.sync_cache(hits=3, misses=1, errors=0, skipped=0, breaker_state="closed")
    m.sync_cache(hits=3, misses=1, errors=0, skipped=0, breaker_state="closed")  # nothing new: nothing added
    m.sync_cache(hits=5, misses=1, errors=2, skipped=4, breaker_state="open")
    text = m.render().decode()
    assert _value(text, 'graphrec_cache_events_total{result="hit"}') == 5.0
    assert _value(text, 'graphrec_cache_events_total{result="error"}') == 2.0
    assert _value(text, 'graphrec_cache_events_total{result="skipped"}') == 4.0
    assert _value(text, "graphrec_cache_breaker_state") == 2.0
    m.sync_cache(hits=5, misses=1, errors=2, skipped=4, breaker_state="half_open")
    assert _value(m.render().decode(), "graphrec_cache_breaker_state") == 1.0


def test_model_version_and_replica_start() -> None:
    m = ServingMetrics()
    m.replica_started(2.5, "aaa")
    m.version_switched("aaa", "bbb")
    text = m.render().decode()
    assert _value(text, 'graphrec_model_version_info{model_version="aaa"}') == 0.0
    assert _value(text, 'graphrec_model_version_info{model_version="bbb"}') == 1.0
    assert _value(text, "graphrec_replica_starts_total") == 1.0
    assert _value(text, "graphrec_replica_start_seconds") == 2.5


def test_feedback_sums_and_window_gauges() -> None:
    m = ServingMetrics()
    m.observe_feedback(0.25, True, (0.25, 1.0, 1))
    m.observe_feedback(0.75, False, (0.5, 0.5, 2))
    text = m.render().decode()
    assert _value(text, "graphrec_feedback_predicted_click_total") == 1.0
    assert _value(text, 'graphrec_feedback_total{clicked="1"}') == 1.0
    assert _value(text, 'graphrec_feedback_total{clicked="0"}') == 1.0
    assert _value(text, "graphrec_calibration_drift") == 0.0
    assert _value(text, "graphrec_calibration_predicted") == 0.5


def test_metrics_page_says_it_is_one_replica() -> None:
    """Regression (issue 13): /metrics counted per ingress replica (scrapes read 12, 8, 12, 8...) and did not
    say so; the page now names its replica and points at Ray's export."""
    text = ServingMetrics(replica="abc123").render().decode()
    first = text.splitlines()[0]
    assert first.startswith("# ") and "ONE replica (abc123)" in first and "ray_graphrec_" in first
