"""The serving metrics through ``ray.serve.metrics``: Ray's metrics agent exports them for the whole cluster.

Each metric of :data:`graphrec_ray.serving.telemetry.SPECS` becomes a ``ray.serve.metrics`` Counter, Gauge or
Histogram of the same name; inside a replica Serve adds the ``application``, ``deployment`` and ``replica`` tags,
and Prometheus sees ``ray_<name>`` (counters ``ray_<name>_total``) on each node's metrics export port. This is
where the service's numbers come from (the Ray dashboard's Metrics tab, Grafana, Prometheus); ``GET /metrics``
shows only the replica that answered.

Recording costs ~5 us per call here (``ray.serve.metrics`` Counter.inc, measured in a plain process).
"""

from __future__ import annotations

from typing import Any

from graphrec_ray.serving.telemetry import COUNTER, GAUGE, SPECS, MetricSpec, ServingMetrics


class RayBackend:
    """:data:`SPECS` as ``ray.serve.metrics`` objects (one per metric name and process)."""

    def __init__(self) -> None:
        from ray.serve import metrics as rm

        self._metrics: dict[str, Any] = {}
        for s in SPECS:
            tags = s.tag_keys or None
            if s.kind == COUNTER:
                m = rm.Counter(s.name, s.description, tag_keys=tags)
            elif s.kind == GAUGE:
                m = rm.Gauge(s.name, s.description, tag_keys=tags)
            else:
                m = rm.Histogram(s.name, s.description, boundaries=list(s.boundaries), tag_keys=tags)
            self._metrics[s.name] = m

    def record(self, spec: MetricSpec, value: float, tags: dict[str, str]) -> None:
        m = self._metrics[spec.name]
        if spec.kind == COUNTER:
            m.inc(value, tags=tags or None)
        elif spec.kind == GAUGE:
            m.set(value, tags=tags or None)
        else:
            m.observe(value, tags=tags or None)


def replica_metrics() -> ServingMetrics:
    """:class:`ServingMetrics` of this Serve replica: its ``/metrics`` registry plus Ray's export."""
    from ray import serve

    try:
        replica = serve.get_replica_context().replica_tag
    except Exception:  # noqa: BLE001 - outside a replica (tests): no name
        replica = ""
    return ServingMetrics((RayBackend(),), replica=replica)
