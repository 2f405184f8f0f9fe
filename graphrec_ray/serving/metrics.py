"""Prometheus metrics of the serving path, in a registry of their own (never the global default one).

Exposed as Prometheus text by ``GET /metrics``:

* ``graphrec_requests_total{endpoint, status}``: HTTP requests by endpoint and status code;
* ``graphrec_stage_latency_seconds{stage}``: histograms for ``retrieval``, ``ranking``, ``rerank``, ``total``;
* ``graphrec_cache_lookups_total{result}``: user-embedding lookups, ``hit`` or ``miss`` (known users only);
* ``graphrec_cache_hit_ratio``: hits / lookups since start-up;
* ``graphrec_cold_start_total``: requests answered with cold-start recommendations;
* ``graphrec_reloads_total{status}``: model reloads, ``ok`` or ``error``.
"""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.004, 0.006, 0.008, 0.01, 0.015, 0.02, 0.025, 0.05, 0.1, 0.25, 1.0)
STAGES = ("retrieval", "ranking", "rerank", "total")


class ServingMetrics:
    """All serving metrics behind one private ``CollectorRegistry``."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("graphrec_requests", "HTTP requests", ["endpoint", "status"],
                                registry=self.registry)
        self.latency = Histogram("graphrec_stage_latency_seconds", "Latency per serving stage", ["stage"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.cache_lookups = Counter("graphrec_cache_lookups", "User-embedding cache lookups", ["result"],
                                     registry=self.registry)
        self.cache_hit_ratio = Gauge("graphrec_cache_hit_ratio", "Cache hits / lookups since start-up",
                                     registry=self.registry)
        self.cold_start = Counter("graphrec_cold_start", "Cold-start responses", registry=self.registry)
        self.reloads = Counter("graphrec_reloads", "Model reloads", ["status"], registry=self.registry)
        self._hits = 0
        self._lookups = 0
        self._lock = threading.Lock()

    def observe_recommend(self, retrieval_ms: float, ranking_ms: float, rerank_ms: float, total_ms: float,
                          cache_hit: bool, cold_start: bool) -> None:
        """Record one successful ``/recommend`` response."""
        for stage, ms in zip(STAGES, (retrieval_ms, ranking_ms, rerank_ms, total_ms)):
            self.latency.labels(stage=stage).observe(ms / 1e3)
        if cold_start:
            self.cold_start.inc()
            return
        self.cache_lookups.labels(result="hit" if cache_hit else "miss").inc()
        with self._lock:
            self._lookups += 1
            self._hits += int(cache_hit)
            self.cache_hit_ratio.set(self._hits / self._lookups)

    def count_request(self, endpoint: str, status: int) -> None:
        self.requests.labels(endpoint=endpoint, status=str(status)).inc()

    def render(self) -> bytes:
        """Prometheus text exposition of this registry."""
        return generate_latest(self.registry)
