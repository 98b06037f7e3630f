"""Typed records behind the Avro schemas: Event, Incident, Anomaly, DeadLetter.

Each model converts to and from the dict shape fastavro reads and writes
(``to_avro`` / ``from_avro``).  Timestamps are timezone-aware UTC datetimes.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Source(StrEnum):
    KUBERNETES = "kubernetes"
    SENTRY = "sentry"
    CLOUDWATCH = "cloudwatch"
    GRAFANA = "grafana"
    SYNTHETIC = "synthetic"
    FILE = "file"


class EventKind(StrEnum):
    LOG = "log"
    METRIC = "metric"
    EVENT = "event"
    ERROR = "error"
    ALERT = "alert"
    DEPLOY = "deploy"
    ANNOTATION = "annotation"
    SPAN = "span"


class Severity(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {s: i for i, s in enumerate(Severity)}


class IncidentStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


def utc(value: datetime) -> datetime:
    """Return ``value`` in UTC; naive datetimes are rejected (ambiguous event time)."""
    if value.tzinfo is None:
        raise ValueError("timestamp has no UTC offset (RFC 3339 needs 'Z' or '+hh:mm')")
    return value.astimezone(UTC)


class Entity(BaseModel):
    """Where an event happened.  Every field is optional."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str | None = None
    pod: str | None = None
    container: str | None = None
    node: str | None = None
    cluster: str | None = None
    region: str | None = None
    log_group: str | None = None
    project: str | None = None
    release: str | None = None


class Metric(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    value: float
    unit: str | None = None

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("metric value must be a finite number")
        return value


class Event(BaseModel):
    """One normalized observation; the ingest contract and the Avro Event record."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=256)
    source: Source
    kind: EventKind
    timestamp: datetime
    service: str = Field(min_length=1, max_length=256)
    entity: Entity = Entity()
    severity: Severity
    message: str
    metric: Metric | None = None
    attributes: dict[str, str] = Field(default_factory=dict)
    template_id: str | None = None
    template: str | None = None
    novelty: float | None = None

    @field_validator("timestamp")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return utc(value)

    @model_validator(mode="after")
    def _metric_matches_kind(self) -> Event:
        if self.kind is EventKind.METRIC and self.metric is None:
            raise ValueError("kind 'metric' needs a 'metric' object with name and value")
        return self

    @property
    def is_anomalous(self) -> bool:
        """The skeleton's anomaly rule: severity ≥ error, or an error/alert kind."""
        return self.severity.rank >= Severity.ERROR.rank or self.kind in (
            EventKind.ERROR,
            EventKind.ALERT,
        )

    def to_avro(self) -> dict[str, Any]:
        data = self.model_dump(mode="python")
        data["source"] = self.source.value
        data["kind"] = self.kind.value
        data["severity"] = self.severity.value
        return data

    @classmethod
    def from_avro(cls, record: dict[str, Any]) -> Event:
        return cls.model_validate(record)


def derive_event_id(payload: dict[str, Any]) -> str:
    """A stable id from an event's content: the same content always gives the same id."""
    content = {k: v for k, v in payload.items() if k != "id"}
    digest = hashlib.sha256(
        json.dumps(content, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")
    ).hexdigest()
    return f"ev-{digest[:32]}"


class RootCauseCandidate(BaseModel):
    model_config = ConfigDict(frozen=True)

    service: str
    score: float
    reason: str


class EvidenceRef(BaseModel):
    """A pointer to one event behind an incident."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    source: str
    kind: str
    timestamp: datetime
    service: str
    severity: str
    summary: str = ""


class GraphNode(BaseModel):
    """A node of an incident's correlation graph (a service, or a signal template)."""

    model_config = ConfigDict(frozen=True)

    id: str
    kind: str
    service: str
    weight: float = 0.0


class GraphEdge(BaseModel):
    """A link of an incident's correlation graph, with its kind and confidence."""

    model_config = ConfigDict(frozen=True)

    source: str
    target: str
    kind: str
    confidence: float


class RemediationSuggestion(BaseModel):
    """A suggested action; Seismo never runs it."""

    model_config = ConfigDict(frozen=True)

    action: str
    risk: str  # read-only | reversible | destructive
    command: str
    preconditions: list[str] = Field(default_factory=list)
    validation: str = ""
    success_probability: float = 0.5
    basis: str = ""


class Incident(BaseModel):
    """Latest state of one incident, as published on ``seismo.incidents``."""

    model_config = ConfigDict(frozen=True)

    id: str
    revision: int
    status: IncidentStatus
    title: str
    severity: Severity
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None = None
    services: list[str]
    sources: list[str]
    root_cause_candidates: list[RootCauseCandidate]
    evidence: list[EvidenceRef]
    label: str | None = None
    remediation: list[str] = Field(default_factory=list)
    event_count: int = 0
    summary: str = ""
    detected_at: datetime | None = None
    fingerprint: str = ""
    merged_from: list[str] = Field(default_factory=list)
    merged_into: str | None = None
    reopened: int = 0
    label_quality: float = 0.0
    split_from: str | None = None
    split_into: list[str] = Field(default_factory=list)
    graph_nodes: list[GraphNode] = Field(default_factory=list)
    graph_edges: list[GraphEdge] = Field(default_factory=list)
    remediation_suggestions: list[RemediationSuggestion] = Field(default_factory=list)

    def to_avro(self) -> dict[str, Any]:
        data = self.model_dump(mode="python")
        data["status"] = self.status.value
        data["severity"] = self.severity.value
        return data

    @classmethod
    def from_avro(cls, record: dict[str, Any]) -> Incident:
        return cls.model_validate(record)


class Anomaly(BaseModel):
    """One scored signal judged anomalous, as published on ``seismo.anomalies`` (key = service).

    ``explanation`` maps feature names and baselines to their values as strings (Avro map of
    strings); ``id`` is deterministic in the event id and the signal, so a replay re-publishes
    the same ids.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    event_id: str
    service: str
    source: str
    kind: str
    severity: Severity
    timestamp: datetime
    score: float = Field(ge=0.0, le=1.0)
    signal: str
    detectors: list[str] = Field(default_factory=list)
    explanation: dict[str, str] = Field(default_factory=dict)
    message: str = ""
    template_id: str | None = None

    @field_validator("timestamp")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return utc(value)

    def to_avro(self) -> dict[str, Any]:
        data = self.model_dump(mode="python")
        data["severity"] = self.severity.value
        return data

    @classmethod
    def from_avro(cls, record: dict[str, Any]) -> Anomaly:
        return cls.model_validate(record)


class DeadLetter(BaseModel):
    """A message Seismo gave up on, with the reason; see ``dead_letter.avsc``."""

    model_config = ConfigDict(frozen=True)

    reason: str
    error_type: str
    component: str
    payload: bytes
    original_key: bytes | None = None
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    source_file: str | None = None
    line_number: int | None = None
    failed_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    def to_avro(self) -> dict[str, Any]:
        return self.model_dump(mode="python")

    @classmethod
    def from_avro(cls, record: dict[str, Any]) -> DeadLetter:
        return cls.model_validate(record)
