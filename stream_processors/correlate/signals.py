"""Stage 1 of correlation: one input record → at most one compact :class:`Signal`.

Pure.  A signal is what the cross-service correlator needs of an event or an anomaly,
and nothing more: a few hundred bytes of JSON on the internal signals topic.

* **symptom** — an error/alert event, an error/critical event of any kind, a Kubernetes
  warning event, an errored span: these open and grow incidents;
* **weak** — a warning log line: joins an incident only through a strong link (a shared
  trace id, naming a service of the incident), never opens one;
* **change** — a deploy, release or config event: "what changed" for root-cause ranking;
* **span** — a sampled span (trace id, span id, parent id): teaches the call graph;
* **anomaly** — a ``seismo.anomalies`` record: evidence and root-cause weight of its service.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class SignalKind(StrEnum):
    SYMPTOM = "symptom"
    WEAK = "weak"
    CHANGE = "change"
    SPAN = "span"
    ANOMALY = "anomaly"


_SEVERE = frozenset({"error", "critical"})
_SEV_RANK = {"debug": 0, "info": 1, "warning": 2, "error": 3, "critical": 4}
_CHANGE_WORDS = re.compile(r"\b(deploy|deployed|rolled out|rollout|release[ds]?|configmap|config(uration)? "
                           r"(change|update)|feature flag|helm upgrade|image updated)\b", re.I)
_TRACE_KEYS = ("trace_id", "traceId", "trace.id", "TraceId")
_SPAN_KEYS = ("span_id", "spanId", "span.id", "SpanId")
_PARENT_KEYS = ("parent_span_id", "parent", "parentSpanId", "ParentSpanId", "parent_id")
SPAN_SAMPLE = 8  # one trace in SPAN_SAMPLE teaches the call graph (chosen by trace id: deterministic)


@dataclass(frozen=True)
class Signal:
    """One correlatable observation (JSON round-trip through :meth:`to_json` / :meth:`from_json`)."""

    id: str
    kind: SignalKind
    ts_us: int
    service: str
    source: str = ""
    event_kind: str = ""
    severity: int = 1
    summary: str = ""
    template_id: str = ""
    trace_id: str = ""
    span_id: str = ""
    parent_id: str = ""
    refs: tuple[str, ...] = ()  # entity tokens naming other things (node, release, db, log group …)
    score: float = 0.0  # anomaly score in [0, 1]
    extra: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "k": self.kind.value, "t": self.ts_us, "s": self.service}
        for key, value in (("src", self.source), ("ek", self.event_kind), ("m", self.summary),
                           ("tpl", self.template_id), ("tr", self.trace_id), ("sp", self.span_id),
                           ("pa", self.parent_id)):
            if value:
                out[key] = value
        if self.severity != 1:
            out["sev"] = self.severity
        if self.refs:
            out["r"] = list(self.refs)
        if self.score:
            out["sc"] = self.score
        if self.extra:
            out["x"] = self.extra
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Signal:
        return cls(
            id=str(d["id"]), kind=SignalKind(d["k"]), ts_us=int(d["t"]), service=str(d["s"]),
            source=d.get("src", ""), event_kind=d.get("ek", ""), severity=int(d.get("sev", 1)),
            summary=d.get("m", ""), template_id=d.get("tpl", ""), trace_id=d.get("tr", ""),
            span_id=d.get("sp", ""), parent_id=d.get("pa", ""), refs=tuple(d.get("r", ())),
            score=float(d.get("sc", 0.0)), extra=dict(d.get("x", {})),
        )


def _first(attrs: dict[str, str], keys: tuple[str, ...]) -> str:
    for key in keys:
        value = attrs.get(key)
        if value:
            return str(value)
    return ""


def sampled(trace_id: str) -> bool:
    """Whether a span of ``trace_id`` is forwarded for learning the call graph."""
    digest = hashlib.blake2b(trace_id.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % SPAN_SAMPLE == 0


def _refs(entity: dict[str, Any] | None, attrs: dict[str, str]) -> tuple[str, ...]:
    refs: list[str] = []
    ent = entity or {}
    for key in ("node", "release", "project", "log_group", "pod"):
        value = ent.get(key)
        if value:
            refs.append(f"{key}={value}")
    for key, value in attrs.items():
        if key in ("node", "service", "dimension.Service", "dimension.DBInstance", "peer.service",
                   "alertname", "job", "app"):
            refs.append(f"{key.rsplit('.', 1)[-1].lower()}={value}")
    return tuple(refs)


# Events of these kinds at these severities never give a signal, whatever their message and
# attributes (see kind_of): most of a stream, of which the correlate step reads three fields.
_SILENT_KINDS = frozenset({"log", "metric"})
_SILENT_SEVERITIES = frozenset({"debug", "info"})


def may_signal(kind: str, severity: str) -> bool:
    """False when :func:`kind_of` is None for every event of this kind and severity."""
    return kind not in _SILENT_KINDS or severity not in _SILENT_SEVERITIES


def kind_of(kind: str, severity: str, message: str, attrs: dict[str, str]) -> SignalKind | None:
    """The signal an event of this kind/severity gives, or None (most events give none)."""
    if kind == "deploy" or (kind in ("event", "annotation") and _CHANGE_WORDS.search(message)
                            and severity not in _SEVERE):
        return SignalKind.CHANGE
    if kind == "span":
        status = (attrs.get("status") or attrs.get("status_code") or attrs.get("error") or "").lower()
        if severity in _SEVERE or status in ("error", "true", "status_code_error", "2"):
            return SignalKind.SYMPTOM
        trace = _first(attrs, _TRACE_KEYS)
        return SignalKind.SPAN if trace and sampled(trace) else None
    if kind in ("error", "alert") or severity in _SEVERE:
        return SignalKind.SYMPTOM
    if severity == "warning":
        return SignalKind.SYMPTOM if kind == "event" else SignalKind.WEAK
    return None


def from_event(plain: dict[str, Any]) -> Signal | None:
    """The signal of one enriched event (the plain Avro dict: ``timestamp`` in µs), or None.

    Raises KeyError/TypeError/ValueError when a required field is missing or mistyped.
    """
    kind, severity = str(plain["kind"]), str(plain["severity"])
    message = str(plain.get("message") or "")
    attrs: dict[str, str] = plain.get("attributes") or {}
    sk = kind_of(kind, severity, message, attrs)
    if sk is None:
        return None
    template = plain.get("template") or message
    summary = (message.strip().splitlines() or [kind])[0][:200]
    return Signal(
        id=str(plain["id"]), kind=sk, ts_us=int(plain["timestamp"]), service=str(plain["service"]),
        source=str(plain["source"]), event_kind=kind, severity=_SEV_RANK.get(severity, 1),
        summary=summary if sk is not SignalKind.SPAN else "",
        template_id=str(plain.get("template_id") or "") if sk is not SignalKind.SPAN else "",
        trace_id=_first(attrs, _TRACE_KEYS), span_id=_first(attrs, _SPAN_KEYS),
        parent_id=_first(attrs, _PARENT_KEYS),
        refs=_refs(plain.get("entity"), attrs) if sk is not SignalKind.SPAN else (),
        extra={"template": str(template)[:200]} if sk is SignalKind.SYMPTOM else {},
    )


def from_anomaly(record: dict[str, Any]) -> Signal:
    """The signal of one ``seismo.anomalies`` record (plain Avro dict).  Raises KeyError/ValueError."""
    explanation: dict[str, str] = record.get("explanation") or {}
    return Signal(
        id=f"a:{record['id']}", kind=SignalKind.ANOMALY, ts_us=int(record["timestamp"]),
        service=str(record["service"]), source=str(record.get("source") or ""),
        event_kind=str(record.get("kind") or ""), severity=_SEV_RANK.get(str(record.get("severity")), 2),
        summary=str(record.get("message") or record.get("signal") or "")[:200],
        template_id=str(record.get("template_id") or ""), score=float(record.get("score") or 0.0),
        extra={"signal": str(record.get("signal") or ""), "event_id": str(record.get("event_id") or ""),
               **{k: str(v)[:80] for k, v in list(explanation.items())[:4]}},
    )
