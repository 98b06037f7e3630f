"""Grafana data frames (``/api/ds/query`` results) → metric and log Events.  Pure; no I/O.

A frame is ``{"schema": {"fields": [{name, type, labels?}, …]}, "data": {"values": [[…], …]}}``
with one column per field.  Prometheus frames have a ``time`` field and
``number`` fields (labels on each number field): every (time, value) is one
``metric`` Event named after the query.  Loki frames have a ``Line`` string
field, a time field and either a ``labels`` field (one dict per row, Grafana
10+) or labels on the ``Line`` field: every row is one ``log`` Event.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime
from typing import Any

from producers.config import GrafanaQuery
from producers.mapping import ServiceMapper
from schemas.models import Entity, Event, EventKind, Metric, Severity, Source

_LEVELS = {"critical": Severity.CRITICAL, "fatal": Severity.CRITICAL, "error": Severity.ERROR,
           "err": Severity.ERROR, "warn": Severity.WARNING, "warning": Severity.WARNING,
           "debug": Severity.DEBUG, "info": Severity.INFO}


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _ms(value: Any) -> int:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    raise ValueError(f"time value {value!r} is not epoch milliseconds")


def log_severity(line: str, labels: dict[str, str]) -> Severity:
    """A ``level``/``severity`` label when present, else the first level word in the line."""
    for key in ("level", "severity", "detected_level"):
        if labels.get(key, "").lower() in _LEVELS:
            return _LEVELS[labels[key].lower()]
    lowered = line[:200].lower()
    for word in ("critical", "fatal", "error", "warn", "debug"):
        if word in lowered:
            return _LEVELS[word]
    return Severity.INFO


def frame_events(query: GrafanaQuery, frame: dict[str, Any], mapper: ServiceMapper,
                 after_ms: int, until_ms: int) -> list[Event]:
    """The frame's points/rows with ``after_ms < t <= until_ms`` as Events.

    Raises ValueError, KeyError or TypeError for a frame without the documented shape.
    """
    fields = frame["schema"]["fields"]
    columns = frame["data"]["values"]
    if len(fields) != len(columns):
        raise ValueError("frame has a different number of fields and value columns")
    names = [f.get("name") for f in fields]
    time_idx = next(i for i, f in enumerate(fields) if f.get("type") == "time")
    if "Line" in names:
        return _log_rows(query, fields, columns, names, time_idx, mapper, after_ms, until_ms)
    out: list[Event] = []
    for idx, field in enumerate(fields):
        if field.get("type") != "number":
            continue
        labels = {str(k): str(v) for k, v in (field.get("labels") or {}).items()}
        service = mapper.canonical(query.service) if query.service else mapper.for_grafana(labels)
        for t, value in zip(columns[time_idx], columns[idx], strict=True):
            t_ms = _ms(t)
            if not after_ms < t_ms <= until_ms or value is None or not math.isfinite(float(value)):
                continue
            out.append(Event(
                id=f"grafana:query:{query.name}:{_digest(labels)}:{t_ms}", source=Source.GRAFANA,
                kind=EventKind.METRIC, timestamp=datetime.fromtimestamp(t_ms / 1000, UTC), service=service,
                entity=Entity(namespace=labels.get("namespace"), pod=labels.get("pod")),
                severity=Severity.INFO, message=f"{query.name} {query.expr}"[:500],
                metric=Metric(name=query.name, value=float(value), unit=query.unit),
                attributes={"query": query.name, **{f"label.{k}": v for k, v in labels.items()}},
            ))
    return out


def log_row_times(frame: dict[str, Any]) -> list[int]:
    """The epoch-ms time of every row of a log frame (one with a ``Line`` field); [] for other frames."""
    fields = frame["schema"]["fields"]
    if not any(f.get("name") == "Line" for f in fields):
        return []
    time_idx = next(i for i, f in enumerate(fields) if f.get("type") == "time")
    return [_ms(t) for t in frame["data"]["values"][time_idx]]


def _log_rows(query: GrafanaQuery, fields: list[dict[str, Any]], columns: list[list[Any]], names: list[Any],
              time_idx: int, mapper: ServiceMapper, after_ms: int, until_ms: int) -> list[Event]:
    line_idx = names.index("Line")
    field_labels = {str(k): str(v) for k, v in (fields[line_idx].get("labels") or {}).items()}
    out: list[Event] = []
    for row in range(len(columns[line_idx])):
        t_ms = _ms(columns[time_idx][row])
        if not after_ms < t_ms <= until_ms:
            continue
        line = str(columns[line_idx][row])
        row_labels = columns[names.index("labels")][row] if "labels" in names else None
        labels = {**field_labels, **{str(k): str(v) for k, v in (row_labels or {}).items()}}
        row_id = columns[names.index("id")][row] if "id" in names else _digest(t_ms, line, labels)
        service = mapper.canonical(query.service) if query.service else mapper.for_grafana(labels)
        out.append(Event(
            id=f"grafana:log:{query.name}:{row_id}"[:256], source=Source.GRAFANA, kind=EventKind.LOG,
            timestamp=datetime.fromtimestamp(t_ms / 1000, UTC), service=service,
            entity=Entity(namespace=labels.get("namespace"), pod=labels.get("pod"),
                          container=labels.get("container")),
            severity=log_severity(line, labels), message=line[:4000],
            attributes={"query": query.name, **{f"label.{k}": v for k, v in labels.items()}},
        ))
    return out
