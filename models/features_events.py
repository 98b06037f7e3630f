"""Streaming features of one service's event stream, in event time (pure, JSON-serializable).

* tumbling windows of ``window_us`` aligned on the epoch (:func:`window_start`):
  per template counts and the error rate of the window (:class:`Window`);
* robust baselines of those counts and rates (:class:`Baseline`: the last
  ``size`` closed-window values, compared by a median/MAD z-score with a
  floor on the scale, so a flat baseline does not make every wiggle infinite);
* calendar features of an event time (:func:`calendar`).

The metric series themselves go to :class:`models.series.MetricDetector`; the
novelty of a template arrives on the enriched event.  Nothing here looks at
wall time, so the same events always give the same features.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

MAD_TO_SIGMA = 1.4826


def window_start(ts_us: int, window_us: int) -> int:
    """Start (µs since the epoch) of the tumbling window holding ``ts_us``."""
    return ts_us - ts_us % window_us


def calendar(ts: datetime) -> dict[str, float]:
    """Hour of day (0-23) and day of week (0 = Monday) of an event time."""
    return {"hour_of_day": float(ts.hour), "day_of_week": float(ts.weekday())}


@dataclass(frozen=True)
class Robust:
    """A value against its baseline: ``z = (value - median) / scale``."""

    value: float
    median: float
    scale: float
    n: int

    @property
    def z(self) -> float:
        return (self.value - self.median) / self.scale


@dataclass
class Baseline:
    """The last ``size`` closed-window values of one signal (oldest first)."""

    size: int
    values: list[float] = field(default_factory=list)

    def push(self, value: float) -> None:
        self.values.append(value)
        if len(self.values) > self.size:
            del self.values[: len(self.values) - self.size]

    def push_zeros(self, n: int) -> None:
        """Windows without a single occurrence (a gap in the stream)."""
        self.values.extend([0.0] * min(n, self.size))
        if len(self.values) > self.size:
            del self.values[: len(self.values) - self.size]

    def __len__(self) -> int:
        return len(self.values)

    def compare(self, value: float, min_scale: float, counts: bool = False) -> Robust:
        """``value`` against the baseline; the scale is ``max(1.4826 * MAD, min_scale)``.

        With ``counts`` the floor is also the Poisson deviation of the median
        (``sqrt(max(median, 1))``): a count that never varied still may vary by that much.
        """
        med = statistics.median(self.values) if self.values else 0.0
        mad = statistics.median([abs(v - med) for v in self.values]) if self.values else 0.0
        floor = max(min_scale, max(med, 1.0) ** 0.5) if counts else min_scale
        return Robust(value, med, max(MAD_TO_SIGMA * mad, floor), len(self.values))


@dataclass
class Ref:
    """The first event of a signal in a window: what an anomaly about the window points at."""

    event_id: str
    source: str
    kind: str
    severity: str
    text: str

    def to_json(self) -> list[str]:
        return [self.event_id, self.source, self.kind, self.severity, self.text]

    @classmethod
    def from_json(cls, data: list[Any]) -> Ref:
        return cls(*[str(x) for x in data])


@dataclass
class Window:
    """Counts of one tumbling window of one service."""

    start_us: int
    total: int = 0
    errors: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # template id -> count
    refs: dict[str, Ref] = field(default_factory=dict)  # template id -> first event
    first_error: Ref | None = None

    def add(self, template_id: str | None, is_error: bool, ref: Callable[[], Ref]) -> None:
        """Count one event; ``ref`` is called only when the event is the first of a signal."""
        self.total += 1
        if is_error:
            self.errors += 1
            if self.first_error is None:
                self.first_error = ref()
        if template_id is not None:
            count = self.counts.get(template_id, 0)
            self.counts[template_id] = count + 1
            if count == 0:
                self.refs[template_id] = ref()

    @property
    def error_rate(self) -> float:
        return self.errors / self.total if self.total else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "start_us": self.start_us, "total": self.total, "errors": self.errors,
            "counts": self.counts, "refs": {k: r.to_json() for k, r in self.refs.items()},
            "first_error": self.first_error.to_json() if self.first_error else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Window:
        first = data.get("first_error")
        return cls(
            start_us=int(data["start_us"]), total=int(data["total"]), errors=int(data["errors"]),
            counts={str(k): int(v) for k, v in data["counts"].items()},
            refs={str(k): Ref.from_json(v) for k, v in data["refs"].items()},
            first_error=Ref.from_json(first) if first else None,
        )
