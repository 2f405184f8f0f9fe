"""Serving metrics: ONE catalogue of names (:data:`SPECS`), recorded into any number of backends.

Where to read them:

* **Ray's metrics export (the source of truth for the service).** In a Serve replica, ``serve_app/metrics_ray.py``
  adds a backend that records every metric through ``ray.serve.metrics``; Ray's metrics agent on each node
  exports them to Prometheus (``ray start --metrics-export-port=...``), tagged with ``application``,
  ``deployment`` and ``replica``, named ``ray_`` + the name below (counters end in ``_total``). Sum over
  ``replica`` for the service; ``configs/grafana/graphrec_serving.json`` is a dashboard over them.
* ``GET /metrics`` renders the same metrics from a private ``prometheus_client`` registry of **the one replica
  that answered** (its first line names the replica). With two or more replicas, repeated scrapes through Serve's
  proxy read different replicas, so never sum or rate them; use Ray's export.

The catalogue (Prometheus names as ``/metrics`` shows them; Ray's export prefixes ``ray_``):

* ``graphrec_requests_total{endpoint, status}``: HTTP requests by endpoint and status code;
* ``graphrec_stage_latency_seconds{stage}``: histograms for ``retrieval``, ``ranking``, ``rerank``, ``total``;
* ``graphrec_cache_lookups_total{result}``: ``hit``/``miss`` of served known users (from the response bodies);
* ``graphrec_cache_hit_ratio``: hits / lookups of this replica since start-up;
* ``graphrec_cache_events_total{result}``: the cache's own count, ``hit``, ``miss``, ``error`` (a Redis call
  failed) and ``skipped`` (served from the table without asking Redis: breaker open or no Redis);
* ``graphrec_cache_breaker_state``: the Redis circuit breaker, 0 closed, 1 half-open, 2 open;
* ``graphrec_cold_start_total``: responses with cold-start recommendations (unknown users);
* ``graphrec_replica_starts_total`` / ``graphrec_replica_start_seconds``: replica (re)starts and the seconds the
  last one took to load its model version and warm up;
* ``graphrec_model_version_info{model_version}``: 1 for the version the replica serves, 0 for earlier ones;
* ``graphrec_reloads_total{status}``: ``POST /reload`` outcomes, ``ok``, ``error`` or ``denied``;
* ``graphrec_feedback_total{clicked}``, ``graphrec_feedback_predicted_click_total``: outcomes fed back with
  ``POST /feedback`` and the sum of the predicted click probabilities of those same (user, item) pairs, so
  ``rate(predicted) / rate(feedback)`` vs ``rate(feedback{clicked="1"}) / rate(feedback)`` compares mean
  prediction and observed click rate over any PromQL window, across replicas;
* ``graphrec_calibration_predicted`` / ``graphrec_calibration_observed`` / ``graphrec_calibration_drift``: the
  same over this replica's last ``window`` feedback events (:class:`graphrec_ray.serving.drift.CalibrationWindow`),
  drift = mean predicted - observed rate.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Iterable, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

COUNTER, GAUGE, HISTOGRAM = "counter", "gauge", "histogram"
RAY_PREFIX = "ray_"  # Ray's metrics agent exports application metrics as ray_<name>
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.004, 0.006, 0.008, 0.01, 0.015, 0.02, 0.025, 0.05, 0.1, 0.25, 1.0)
START_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
STAGES = ("retrieval", "ranking", "rerank", "total")
BREAKER_VALUE = {"closed": 0.0, "half_open": 1.0, "open": 2.0}


@dataclass(frozen=True)
class MetricSpec:
    """One metric: its name (without ``_total``), kind, help text, tag keys and histogram boundaries."""

    name: str
    kind: str
    description: str
    tag_keys: tuple[str, ...] = ()
    boundaries: tuple[float, ...] = ()

    def series(self, prefix: str = "") -> tuple[str, ...]:
        """Names of the Prometheus series it exports (``prefix=RAY_PREFIX`` for Ray's export)."""
        base = prefix + self.name
        if self.kind == COUNTER:
            return (base + "_total",)
        if self.kind == HISTOGRAM:
            return (base + "_bucket", base + "_count", base + "_sum")
        return (base,)


SPECS: tuple[MetricSpec, ...] = (
    MetricSpec("graphrec_requests", COUNTER, "HTTP requests by endpoint and status", ("endpoint", "status")),
    MetricSpec("graphrec_stage_latency_seconds", HISTOGRAM, "Latency per serving stage", ("stage",),
               LATENCY_BUCKETS),
    MetricSpec("graphrec_cache_lookups", COUNTER, "Served known users by cache result", ("result",)),
    MetricSpec("graphrec_cache_hit_ratio", GAUGE, "Cache hits / lookups of this replica since start-up"),
    MetricSpec("graphrec_cache_events", COUNTER, "Cache hits, misses, Redis errors, skipped lookups", ("result",)),
    MetricSpec("graphrec_cache_breaker_state", GAUGE, "Redis circuit breaker: 0 closed, 1 half-open, 2 open"),
    MetricSpec("graphrec_cold_start", COUNTER, "Cold-start responses"),
    MetricSpec("graphrec_replica_starts", COUNTER, "Replica starts (model loaded and warmed up)"),
    MetricSpec("graphrec_replica_start_seconds", GAUGE, "Seconds the last replica start took (load + warm-up)"),
    MetricSpec("graphrec_model_version_info", GAUGE, "1 for the served model version, 0 for earlier ones",
               ("model_version",)),
    MetricSpec("graphrec_reloads", COUNTER, "Model reloads by outcome", ("status",)),
    MetricSpec("graphrec_feedback", COUNTER, "Outcomes fed back with POST /feedback", ("clicked",)),
    MetricSpec("graphrec_feedback_predicted_click", COUNTER, "Sum of predicted p_click of fed-back pairs"),
    MetricSpec("graphrec_calibration_predicted", GAUGE, "Mean predicted p_click over the last feedback window"),
    MetricSpec("graphrec_calibration_observed", GAUGE, "Observed click rate over the last feedback window"),
    MetricSpec("graphrec_calibration_drift", GAUGE, "Mean predicted p_click - observed click rate (window)"),
)
SPEC: dict[str, MetricSpec] = {s.name: s for s in SPECS}


def exported_series(prefix: str = RAY_PREFIX) -> set[str]:
    """Every series name the catalogue exports (default: as Ray's metrics export names them)."""
    return {n for s in SPECS for n in s.series(prefix)}


class MetricsBackend(Protocol):
    """Where metric values go: ``record`` increments a counter, sets a gauge or observes a histogram."""

    def record(self, spec: MetricSpec, value: float, tags: dict[str, str]) -> None:
        ...


class PrometheusBackend:
    """All of :data:`SPECS` in a private ``CollectorRegistry`` (never the global one), rendered by ``/metrics``."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, header: str = "") -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.header = header
        kinds = {COUNTER: Counter, GAUGE: Gauge, HISTOGRAM: Histogram}
        self._metrics: dict[str, Any] = {}
        for s in SPECS:
            kw: dict[str, Any] = {"buckets": s.boundaries} if s.kind == HISTOGRAM else {}
            self._metrics[s.name] = kinds[s.kind](s.name, s.description, list(s.tag_keys), registry=self.registry,
                                                  **kw)

    def record(self, spec: MetricSpec, value: float, tags: dict[str, str]) -> None:
        m = self._metrics[spec.name]
        m = m.labels(**tags) if spec.tag_keys else m
        if spec.kind == COUNTER:
            m.inc(value)
        elif spec.kind == GAUGE:
            m.set(value)
        else:
            m.observe(value)

    def render(self) -> bytes:
        """Prometheus text exposition, after a ``# ...`` comment line naming the replica (if any)."""
        text = generate_latest(self.registry)
        return (f"# {self.header}\n".encode() + text) if self.header else text


class MetricHandle:
    """One metric over every backend, with ``prometheus_client``'s calls (``labels(...).inc()``, ``set``,
    ``observe``)."""

    __slots__ = ("spec", "_backends", "_tags")

    def __init__(self, spec: MetricSpec, backends: tuple[MetricsBackend, ...], tags: dict[str, str] | None = None
                 ) -> None:
        self.spec, self._backends, self._tags = spec, backends, tags or {}

    def labels(self, **tags: Any) -> "MetricHandle":
        return MetricHandle(self.spec, self._backends, {k: str(v) for k, v in tags.items()})

    def _record(self, value: float) -> None:
        for b in self._backends:
            b.record(self.spec, float(value), self._tags)

    def inc(self, value: float = 1.0) -> None:
        self._record(value)

    def set(self, value: float) -> None:
        self._record(value)

    def observe(self, value: float) -> None:
        self._record(value)


class ServingMetrics:
    """The serving metrics of one replica: a private Prometheus registry (``/metrics``) plus extra backends.

    Args:
        backends: more backends (in a Serve replica: ``serve_app.metrics_ray.RayBackend``).
        replica: name of the replica, written as the first line of :meth:`render`.
    """

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, backends: Iterable[MetricsBackend] = (), replica: str = "") -> None:
        header = (f"graphrec /metrics of ONE replica ({replica or 'this process'}): scrapes through the proxy "
                  f"read different replicas; the service's figures are Ray's metrics export (ray_graphrec_*)")
        self.prometheus = PrometheusBackend(header)
        self.registry = self.prometheus.registry
        all_backends = (self.prometheus, *backends)
        h = {s.name: MetricHandle(s, all_backends) for s in SPECS}
        self.requests = h["graphrec_requests"]
        self.latency = h["graphrec_stage_latency_seconds"]
        self.cache_lookups = h["graphrec_cache_lookups"]
        self.cache_hit_ratio = h["graphrec_cache_hit_ratio"]
        self.cache_events = h["graphrec_cache_events"]
        self.breaker_state = h["graphrec_cache_breaker_state"]
        self.cold_start = h["graphrec_cold_start"]
        self.replica_starts = h["graphrec_replica_starts"]
        self.replica_start_seconds = h["graphrec_replica_start_seconds"]
        self.model_version = h["graphrec_model_version_info"]
        self.reloads = h["graphrec_reloads"]
        self.feedback = h["graphrec_feedback"]
        self.feedback_predicted = h["graphrec_feedback_predicted_click"]
        self.calibration_predicted = h["graphrec_calibration_predicted"]
        self.calibration_observed = h["graphrec_calibration_observed"]
        self.calibration_drift = h["graphrec_calibration_drift"]
        self._stage = {s: self.latency.labels(stage=s) for s in STAGES}
        self._hits = 0
        self._lookups = 0
        self._cache_seen: dict[str, int] = {}
        self._lock = threading.Lock()

    def observe_recommend(self, retrieval_ms: float, ranking_ms: float, rerank_ms: float, total_ms: float,
                          cache_hit: bool, cold_start: bool) -> None:
        """Record one successful ``/recommend`` response."""
        for stage, ms in zip(STAGES, (retrieval_ms, ranking_ms, rerank_ms, total_ms)):
            self._stage[stage].observe(ms / 1e3)
        if cold_start:
            self.cold_start.inc()
            return
        self.cache_lookups.labels(result="hit" if cache_hit else "miss").inc()
        with self._lock:
            self._lookups += 1
            self._hits += int(cache_hit)
            ratio = self._hits / self._lookups
        self.cache_hit_ratio.set(ratio)

    def count_request(self, endpoint: str, status: int) -> None:
        self.requests.labels(endpoint=endpoint, status=str(status)).inc()

    def sync_cache(self, hits: int, misses: int, errors: int, skipped: int, breaker_state: str) -> None:
        """Bring ``graphrec_cache_events_total`` up to the cache's cumulative counts and set the breaker gauge.

        Args:
            hits, misses, errors, skipped: cumulative counts of the cache since start-up
                (:class:`graphrec_ray.serving.cache.CacheStats`); only the increase since the last call is added.
            breaker_state: ``closed``, ``half_open`` or ``open``.
        """
        with self._lock:
            deltas = {}
            for result, n in (("hit", hits), ("miss", misses), ("error", errors), ("skipped", skipped)):
                d = n - self._cache_seen.get(result, 0)
                if d > 0:
                    deltas[result] = d
                    self._cache_seen[result] = n
        for result, d in deltas.items():
            self.cache_events.labels(result=result).inc(d)
        self.breaker_state.set(BREAKER_VALUE.get(breaker_state, -1.0))

    def replica_started(self, seconds: float, model_version: str) -> None:
        """A replica finished loading and warming up in ``seconds`` and serves ``model_version``."""
        self.replica_starts.inc()
        self.replica_start_seconds.set(seconds)
        self.model_version.labels(model_version=model_version).set(1.0)

    def version_switched(self, old: str, new: str) -> None:
        """The replica now serves ``new`` (``graphrec_model_version_info``: new 1, old 0)."""
        self.model_version.labels(model_version=old).set(0.0)
        self.model_version.labels(model_version=new).set(1.0)

    def observe_feedback(self, p_click: float, clicked: bool, window: tuple[float, float, int] | None) -> None:
        """One outcome fed back for a pair predicted at ``p_click``; ``window`` = ``(mean_p, rate, n)`` of the
        replica's :class:`~graphrec_ray.serving.drift.CalibrationWindow` after adding it."""
        self.feedback.labels(clicked=str(int(bool(clicked)))).inc()
        self.feedback_predicted.inc(float(p_click))
        if window is not None:
            mean_p, rate, _ = window
            self.calibration_predicted.set(mean_p)
            self.calibration_observed.set(rate)
            self.calibration_drift.set(mean_p - rate)

    def render(self) -> bytes:
        """Prometheus text exposition of this replica's registry."""
        return self.prometheus.render()
