"""The part of an enriched event the scorer reads, decoded without pydantic.

The score runtime handles tens of thousands of events a second; validating each
one into a full :class:`~schemas.models.Event` costs more than scoring it.  An
:class:`Observation` is built straight from the Avro record (timestamps left as
integer microseconds, see :meth:`schemas.codec.AvroCodec.decode_plain`) with
only the checks the scorer relies on; a record that fails them raises
:class:`~stream_processors.exceptions.InvalidEvent` (it goes to the dead-letter
topic, like an event the full model rejects).  Every event on
``seismo.events.enriched`` was already validated by the normalizer, so this is a
guard against foreign writers, not the contract.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from schemas.models import Event, Severity
from stream_processors.exceptions import InvalidEvent

_US = 1_000_000
SEVERITY_RANK = {s.value: s.rank for s in Severity}
_ERROR_RANK = Severity.ERROR.rank
_ERROR_KINDS = frozenset({"error", "alert"})


# The Event fields an Observation is made of: the score step decodes only these (the entity and
# the attributes are skipped, not built).
FIELDS = ("id", "source", "kind", "timestamp", "service", "severity", "message", "metric",
          "template_id", "template", "novelty")


@dataclass(frozen=True, slots=True)
class Observation:
    """One enriched event as the scorer sees it (times in µs since the epoch, UTC)."""

    id: str
    service: str
    source: str
    kind: str
    severity: str
    ts_us: int
    message: str
    template_id: str | None = None
    template: str | None = None
    novelty: float | None = None
    metric_name: str | None = None
    metric_value: float = 0.0
    metric_unit: str | None = None

    @property
    def is_error(self) -> bool:
        """Severity ≥ error, or an error/alert kind (the scorer's error-rate signal)."""
        return SEVERITY_RANK[self.severity] >= _ERROR_RANK or self.kind in _ERROR_KINDS

    @property
    def is_metric(self) -> bool:
        return self.kind == "metric"

    @classmethod
    def from_event(cls, event: Event) -> Observation:
        metric = event.metric
        return cls(
            id=event.id, service=event.service, source=event.source.value, kind=event.kind.value,
            severity=event.severity.value, ts_us=round(event.timestamp.timestamp() * _US),
            message=event.message, template_id=event.template_id, template=event.template,
            novelty=event.novelty, metric_name=metric.name if metric else None,
            metric_value=metric.value if metric else 0.0, metric_unit=metric.unit if metric else None,
        )

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Observation:
        """From an Event record decoded with integer timestamps.  Raises InvalidEvent."""
        try:
            ev_id, service, ts = record["id"], record["service"], record["timestamp"]
            kind, severity = record["kind"], record["severity"]
            metric = record.get("metric")
            if not (isinstance(ev_id, str) and ev_id and isinstance(service, str) and service):
                raise InvalidEvent("Event needs a non-empty id and service", "invalid_event")
            if not isinstance(ts, int) or severity not in SEVERITY_RANK:
                raise InvalidEvent("Event has no integer timestamp or an unknown severity", "invalid_event")
            if metric is not None:
                value = metric["value"]
                if not math.isfinite(value):
                    raise InvalidEvent("metric value must be a finite number", "invalid_event")
                return cls(
                    ev_id, service, record["source"], kind, severity, ts, record["message"],
                    record.get("template_id"), record.get("template"), record.get("novelty"),
                    metric["name"], float(value), metric.get("unit"),
                )
            if kind == "metric":
                raise InvalidEvent(
                    "kind 'metric' needs a 'metric' object with name and value", "invalid_event"
                )
            return cls(
                ev_id, service, record["source"], kind, severity, ts, record["message"],
                record.get("template_id"), record.get("template"), record.get("novelty"),
            )
        except (KeyError, TypeError) as exc:
            raise InvalidEvent(
                f"Event record lacks a field the scorer needs: {exc!r}", "invalid_event"
            ) from None
