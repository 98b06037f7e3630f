"""The correlate step on the shared runtime: ``seismo.events.enriched`` → ``seismo.incidents``.

Each enriched record is folded into its service's
:class:`~stream_processors.correlate.logic.ServiceState` (StateStore key
``correlate:{service}``).  Most events only move the service's watermark, so they are
read with the plain decoder (a few fields, no validation); an anomalous one is decoded
and validated in full and goes through :func:`~stream_processors.correlate.logic.apply`.
Within a batch an incident may change many times: only its last revision is sent
(keyed by incident id, to the compacted topic), at the end of the batch.  The runtime
saves the changed states after those sends were acknowledged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from schemas.codec import codec_for
from schemas.models import Incident
from seismo.settings import Settings
from seismo.topics import Topics
from stream_processors.correlate.logic import CorrelateConfig, ServiceState, advance, apply
from stream_processors.exceptions import InvalidEvent
from stream_processors.runtime.records import decode_event, decode_plain, key_text
from stream_processors.runtime.step import Output, Record

_ANOMALOUS_SEVERITIES = frozenset({"error", "critical"})
_ANOMALOUS_KINDS = frozenset({"error", "alert"})
_PREFIX = len("correlate:")


def state_key(service: str) -> str:
    return f"correlate:{service}"


class CorrelateAdapter:
    """:class:`~stream_processors.runtime.step.Step` for correlate."""

    name = "correlate"

    def __init__(self, topics: Topics, cfg: CorrelateConfig) -> None:
        self.topics = topics
        self.cfg = cfg
        self._states: dict[str, ServiceState] = {}
        self._dirty: set[str] = set()
        self._pending: dict[str, Incident] = {}
        self._encode = codec_for("incident").encode
        self._load: Callable[[str], dict[str, Any] | None] = lambda key: None

    @classmethod
    def from_settings(cls, settings: Settings) -> CorrelateAdapter:
        cfg = CorrelateConfig(
            window_s=settings.correlate_window_s, quiet_s=settings.resolve_quiet_s,
            max_evidence=settings.max_evidence,
        )
        return cls(Topics.from_settings(settings), cfg)

    @property
    def inputs(self) -> list[str]:
        return [self.topics.enriched]

    def attach(self, load: Callable[[str], dict[str, Any] | None]) -> None:
        self._load = load

    def state_keys(self, records: list[Record]) -> Iterable[str]:
        return {state_key(s) for s in {key_text(r.key) for r in records} if s and s not in self._states}

    def restore(self, saved: dict[str, dict[str, Any]], wanted: set[str]) -> None:
        for key in wanted:
            self._restore(key[_PREFIX:], saved.get(key))

    def _restore(self, service: str, value: dict[str, Any] | None) -> ServiceState:
        state = self._states[service] = ServiceState.from_json(value) if value else ServiceState(service)
        return state

    def handle(self, record: Record, out: Output) -> None:
        plain = decode_plain(record.value)
        try:
            service, ts_us = str(plain["service"]), int(plain["timestamp"])
            anomalous = plain["severity"] in _ANOMALOUS_SEVERITIES or plain["kind"] in _ANOMALOUS_KINDS
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidEvent(f"Event lacks a usable field: {exc!r}", "invalid_event") from None
        state = self._states.get(service)
        if state is None:
            state = self._restore(service, self._load(state_key(service)))
        if anomalous:
            after, incidents = apply(state, decode_event(record.value), self.cfg)
        else:
            after, incidents = advance(state, ts_us, self.cfg)
        if after is not state:
            self._states[service] = after
            self._dirty.add(service)
        for incident in incidents:
            self._pending.pop(incident.id, None)  # keep the order of last change
            self._pending[incident.id] = incident
        out.saw_event_time(ts_us)

    def end_batch(self, out: Output) -> None:
        topic, encode = self.topics.incidents, self._encode
        for incident in self._pending.values():
            out.emit(topic, incident.id.encode(), encode(incident.to_avro()))
        self._pending.clear()

    def dirty_states(self) -> dict[str, dict[str, Any]]:
        out = {state_key(s): self._states[s].to_json() for s in self._dirty if s in self._states}
        self._dirty.clear()
        return out

    def revoked(self) -> None:
        self._states.clear()
        self._dirty.clear()
