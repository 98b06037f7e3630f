"""The correlate step: anomalous events of one service become incidents.

Pure and deterministic: :func:`apply` takes a service's state and one event
and returns the new state plus the incident states to publish.  Only *event
time* drives it, so a replay of old data yields the same incidents, and it is
idempotent per event id, so an at-least-once redelivery changes nothing.

Rules (the walking skeleton's; later steps add scoring and cross-service
evidence):

* an event is anomalous when its severity is ≥ error or its kind is error/alert;
* an anomalous event joins the service's open incident when it lies within
  ``window_s`` of the incident's last anomaly; otherwise that incident is
  resolved and a new one opens;
* an open incident resolves once the service's watermark (the newest event
  time seen) passes its last anomaly by ``quiet_s``;
* an anomalous event older than the dedup floor (the oldest id still
  remembered) cannot be checked for duplication and is rejected as too late.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.models import (
    Event,
    EvidenceRef,
    Incident,
    IncidentStatus,
    RootCauseCandidate,
)
from stream_processors.exceptions import InvalidEvent

_US = 1_000_000


@dataclass(frozen=True)
class CorrelateConfig:
    window_s: float = 300.0
    quiet_s: float = 600.0
    max_evidence: int = 200
    max_remembered_ids: int = 5000


def _us(ts: datetime) -> int:
    return int(ts.timestamp() * _US)


def _dt(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


@dataclass
class ServiceState:
    """Everything the correlator remembers about one service; JSON-serializable."""

    service: str
    watermark_us: int = 0
    current: dict[str, Any] | None = None  # the open incident, as Incident JSON
    remembered: list[list[Any]] = field(default_factory=list)  # [event_id, ts_us], oldest first
    floor_us: int = 0  # anomalies older than this can no longer be deduplicated
    # Derived from ``remembered`` (not serialized): built once per state, kept through
    # ``replace`` while ``remembered`` is unchanged, so most events cost no O(n) scan.
    id_index: frozenset[str] | None = field(default=None, compare=False, repr=False)
    # ``current`` decoded (not serialized), kept in step with it so most events parse nothing.
    current_obj: Incident | None = field(default=None, compare=False, repr=False)

    def current_incident(self) -> Incident | None:
        if self.current is None:
            return None
        if self.current_obj is None:
            self.current_obj = Incident.model_validate(self.current)
        return self.current_obj

    def seen(self, event_id: str) -> bool:
        if self.id_index is None:
            self.id_index = frozenset(str(i) for i, _ in self.remembered)
        return event_id in self.id_index

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service, "watermark_us": self.watermark_us, "current": self.current,
            "remembered": self.remembered, "floor_us": self.floor_us,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ServiceState:
        return cls(
            service=data["service"], watermark_us=int(data["watermark_us"]),
            current=data.get("current"), remembered=[list(x) for x in data.get("remembered", [])],
            floor_us=int(data.get("floor_us", 0)),
        )


def incident_id(service: str, first_event_id: str) -> str:
    digest = hashlib.sha1(f"{service}\x00{first_event_id}".encode(), usedforsecurity=False)
    return f"inc-{digest.hexdigest()[:16]}"


def _summary(event: Event) -> str:
    text = event.message.strip().splitlines()[0] if event.message.strip() else event.kind.value
    return text[:160]


def _evidence(event: Event) -> EvidenceRef:
    return EvidenceRef(
        event_id=event.id, source=event.source.value, kind=event.kind.value,
        timestamp=event.timestamp, service=event.service, severity=event.severity.value,
        summary=_summary(event),
    )


def _rank(incident: Incident) -> list[RootCauseCandidate]:
    first = min(incident.evidence, key=lambda e: (e.timestamp, e.event_id))
    reason = (
        f"first anomalous signal ({first.source} {first.kind}, {first.severity}) at "
        f"{first.timestamp.isoformat()}: {first.summary}"
    )
    return [RootCauseCandidate(service=incident.services[0], score=1.0, reason=reason)]


def _title(service: str, count: int, evidence: list[EvidenceRef]) -> str:
    first = min(evidence, key=lambda e: (e.timestamp, e.event_id))
    noun = "anomalous event" if count == 1 else "anomalous events"
    return f"{service}: {count} {noun}, first: {first.summary}"[:200]


def _open(event: Event) -> Incident:
    ev = [_evidence(event)]
    inc = Incident(
        id=incident_id(event.service, event.id), revision=1, status=IncidentStatus.OPEN,
        title=_title(event.service, 1, ev), severity=event.severity,
        opened_at=event.timestamp, updated_at=event.timestamp, services=[event.service],
        sources=[event.source.value], root_cause_candidates=[], evidence=ev, event_count=1,
    )
    return inc.model_copy(update={"root_cause_candidates": _rank(inc)})


def _attach(inc: Incident, event: Event, cfg: CorrelateConfig) -> Incident:
    evidence = list(inc.evidence)
    if len(evidence) < cfg.max_evidence:
        evidence.append(_evidence(event))
        evidence.sort(key=lambda e: (e.timestamp, e.event_id))
    count = inc.event_count + 1
    severity = max(inc.severity, event.severity, key=lambda s: s.rank)
    updated = inc.model_copy(update={
        "revision": inc.revision + 1, "evidence": evidence, "event_count": count,
        "severity": severity, "sources": sorted({*inc.sources, event.source.value}),
        "opened_at": min(inc.opened_at, event.timestamp),
        "updated_at": max(inc.updated_at, event.timestamp),
        "title": _title(inc.services[0], count, evidence),
    })
    return updated.model_copy(update={"root_cause_candidates": _rank(updated)})


def _resolve(inc: Incident, at: datetime) -> Incident:
    return inc.model_copy(update={
        "revision": inc.revision + 1, "status": IncidentStatus.RESOLVED, "resolved_at": at,
    })


def _remember(state: ServiceState, event: Event, cfg: CorrelateConfig) -> ServiceState:
    remembered = [*state.remembered, [event.id, _us(event.timestamp)]]
    floor = state.floor_us
    if len(remembered) > cfg.max_remembered_ids:
        dropped = remembered[: len(remembered) - cfg.max_remembered_ids]
        remembered = remembered[len(dropped):]
        floor = max(floor, *(int(ts) for _, ts in dropped))
    return replace(state, remembered=remembered, floor_us=floor, id_index=None)


def advance(state: ServiceState, ts_us: int, cfg: CorrelateConfig) -> tuple[ServiceState, list[Incident]]:
    """Move the service's watermark to ``ts_us``; resolve its open incident once quiet.

    All a non-anomalous event does; returns ``state`` itself when nothing changed.
    """
    if ts_us <= state.watermark_us:
        return state, []
    state = replace(state, watermark_us=ts_us)
    current = state.current_incident()
    if current is not None and ts_us - _us(current.updated_at) > cfg.quiet_s * _US:
        resolved = _resolve(current, current.updated_at + timedelta(seconds=cfg.quiet_s))
        return replace(state, current=None, current_obj=None), [resolved]
    return state, []


def apply(
    state: ServiceState, event: Event, cfg: CorrelateConfig
) -> tuple[ServiceState, list[Incident]]:
    """Fold one event into ``state``; return the new state and incident states to publish.

    Raises :class:`InvalidEvent` for an anomalous event too old to deduplicate.
    """
    ts = _us(event.timestamp)
    if state.seen(event.id):
        return state, []
    state, out = advance(state, ts, cfg)
    if not event.is_anomalous:
        return state, out
    if ts < state.floor_us:
        raise InvalidEvent(
            f"anomalous event at {event.timestamp.isoformat()} is older than the dedup "
            f"horizon of service {event.service!r}; replay it into a fresh app id",
            "too_late",
        )
    current = state.current_incident()
    if current is not None and ts - _us(current.updated_at) > cfg.window_s * _US:
        out.append(_resolve(current, current.updated_at + timedelta(seconds=cfg.window_s)))
        current = None
    current = _open(event) if current is None else _attach(current, event, cfg)
    out.append(current)
    state = _remember(state, event, cfg)
    return replace(state, current=current.model_dump(mode="json"), current_obj=current), out
