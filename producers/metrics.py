"""Poller metric names (one Literal), the :class:`Metrics` seam and a recording backend.

Counters end in ``_total`` and only grow; ``seismo_poller_lag_seconds`` is a
gauge (now minus the newest event time of the last page).  Every sample is
labelled ``source`` and ``stream``; ``seismo_poller_object_errors_total`` also
``reason`` (``gone``, ``denied``, ``rejected``: see :mod:`producers.sources.objects`).
:class:`RecordingMetrics` serves tests and renders the Prometheus text
exposition format for ``seismo poll`` (logged on shutdown as a one-line
:meth:`~RecordingMetrics.summary`, served over HTTP by :mod:`producers.metrics_http`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, Protocol

MetricName = Literal[
    "seismo_poller_polled_total",  # items read from the source (events + rejected)
    "seismo_poller_published_total",  # events acknowledged by the broker
    "seismo_poller_deduped_total",  # events dropped as already published (same id)
    "seismo_poller_dead_letters_total",  # payloads sent to the DLQ
    "seismo_poller_errors_total",  # pages that could not be read or acknowledged
    "seismo_poller_retries_total",  # requests retried (429, 5xx, timeouts)
    "seismo_poller_lag_seconds",  # gauge: now - newest event timestamp
    "seismo_poller_object_errors_total",  # one object (pod, issue, log group, query) not read; label reason
    "seismo_poller_parked_total",  # objects parked after failing too often (each also dead-lettered)
    "seismo_poller_truncated_total",  # responses cut at a server limit (Loki maxLines) and paged on
]

Labels = Mapping[str, str]

_SUMMARY: tuple[tuple[str, MetricName], ...] = (
    ("polled", "seismo_poller_polled_total"),
    ("published", "seismo_poller_published_total"),
    ("deduped", "seismo_poller_deduped_total"),
    ("dead letters", "seismo_poller_dead_letters_total"),
    ("errors", "seismo_poller_errors_total"),
    ("retries", "seismo_poller_retries_total"),
    ("object errors", "seismo_poller_object_errors_total"),
    ("parked", "seismo_poller_parked_total"),
)


class Metrics(Protocol):
    """Where pollers report.  Calls never block and never raise."""

    def increment(self, name: MetricName, value: float = 1.0, labels: Labels | None = None) -> None:
        """Add ``value`` to a counter."""

    def gauge(self, name: MetricName, value: float, labels: Labels | None = None) -> None:
        """Set a gauge."""


def _key(labels: Labels | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((labels or {}).items()))


class RecordingMetrics:
    """Keeps every series in memory; :meth:`value` sums the series whose labels match."""

    def __init__(self) -> None:
        self.counters: dict[tuple[MetricName, tuple[tuple[str, str], ...]], float] = {}
        self.gauges: dict[tuple[MetricName, tuple[tuple[str, str], ...]], float] = {}

    def increment(self, name: MetricName, value: float = 1.0, labels: Labels | None = None) -> None:
        series = (name, _key(labels))
        self.counters[series] = self.counters.get(series, 0.0) + value

    def gauge(self, name: MetricName, value: float, labels: Labels | None = None) -> None:
        self.gauges[(name, _key(labels))] = value

    def value(self, name: MetricName, **labels: str) -> float:
        """Sum of counters (or the last gauge value) named ``name`` whose labels include ``labels``."""
        wanted = set(labels.items())
        table = self.gauges if name.endswith("_seconds") else self.counters
        return sum(v for (n, key), v in table.items() if n == name and wanted <= set(key))

    def render(self) -> str:
        """Prometheus text exposition format."""
        lines: list[str] = []
        for kind, table in (("counter", self.counters), ("gauge", self.gauges)):
            for name in sorted({n for n, _ in table}):
                lines.append(f"# TYPE {name} {kind}")
                for (n, key), v in sorted(table.items()):
                    if n == name:
                        body = ",".join(f'{k}="{val}"' for k, val in key)
                        lines.append(f"{name}{{{body}}} {v:g}")
        return "\n".join(lines) + "\n"

    def summary(self) -> str:
        """One line of totals over every stream, e.g. ``polled 12, published 10, … max lag 3.2s``."""
        parts = [f"{label} {self.value(name):g}" for label, name in _SUMMARY]
        lags = [v for (n, _), v in self.gauges.items() if n == "seismo_poller_lag_seconds"]
        parts.append(f"max lag {max(lags):.1f}s" if lags else "max lag n/a")
        return ", ".join(parts)
