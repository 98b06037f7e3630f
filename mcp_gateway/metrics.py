"""The gateway's Prometheus series, served at ``GET /metrics`` beside ``/healthz``.

* ``seismo_gateway_calls_total{method,tool,outcome}`` — every MCP call the guard saw
  (the same calls the audit log records);
* ``seismo_gateway_call_seconds{tool}`` — call latency (histogram);
* ``seismo_gateway_result_bytes_total{tool}`` — bytes answered;
* ``seismo_gateway_incidents`` / ``seismo_gateway_caught_up`` — the materialized table, set at scrape.

``/metrics`` is not behind the API keys (like ``/healthz``): it holds counts, never data.
"""

from __future__ import annotations

from typing import Any, Literal

MetricName = Literal[
    "seismo_gateway_calls_total",
    "seismo_gateway_call_seconds",
    "seismo_gateway_result_bytes_total",
    "seismo_gateway_incidents",
    "seismo_gateway_caught_up",
]
_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class GatewayMetrics:
    """The series of this process (created once: prometheus-client refuses a name twice)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.calls = Counter("seismo_gateway_calls", "MCP calls.", ["method", "tool", "outcome"])
        self.seconds = Histogram(
            "seismo_gateway_call_seconds", "MCP call latency.", ["tool"], buckets=_BUCKETS
        )
        self.result_bytes = Counter("seismo_gateway_result_bytes", "Bytes answered.", ["tool"])
        self.incidents = Gauge("seismo_gateway_incidents", "Incidents in the materialized table.")
        self.caught_up = Gauge("seismo_gateway_caught_up", "1 once the incident table caught up with Kafka.")

    def observe(self, method: str, tool: str | None, outcome: str, seconds: float, size: int) -> None:
        name = tool or "-"
        self.calls.labels(method, name, outcome).inc()
        self.seconds.labels(name).observe(seconds)
        if size:
            self.result_bytes.labels(name).inc(size)

    def render(self, incidents: int, caught_up: bool) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        self.incidents.set(incidents)
        self.caught_up.set(1 if caught_up else 0)
        return generate_latest(), str(CONTENT_TYPE_LATEST)


_metrics: GatewayMetrics | None = None


def gateway_metrics() -> GatewayMetrics:
    global _metrics
    if _metrics is None:
        _metrics = GatewayMetrics()
    return _metrics


def observe_record(record: Any) -> None:
    """Count one audit record (see :class:`mcp_gateway.audit.AuditRecord`)."""
    gateway_metrics().observe(record.method, record.tool, record.outcome, record.latency_ms / 1000,
                              record.result_bytes)
