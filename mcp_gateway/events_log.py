"""The recent events every incident tool looks up by id, service, kind and time.

Unlike :class:`~mcp_gateway.recent.RecentEvents` (the semantic-search window, which needs an
embedding engine) this is a plain bounded log: ``timeline``, ``explain`` and ``what_changed``
work with ``SEISMO_EMBEDDER=off`` too.  One feeding thread calls :meth:`EventLog.add` and
:meth:`EventLog.expire`; any number of readers call the rest.  Each method holds the lock
only for in-memory work and returns copies.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from schemas.models import Event

MAX_MESSAGE_CHARS = 500


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """One enriched event and where it lies on Kafka."""

    id: str
    service: str
    source: str
    kind: str
    severity: str
    timestamp: datetime
    message: str
    template_id: str | None
    template: str | None
    topic: str
    partition: int
    offset: int
    arrived: float
    entity: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, event: Event, topic: str, partition: int, offset: int, arrived: float) -> LoggedEvent:
        msg = event.message
        if len(msg) > MAX_MESSAGE_CHARS:
            msg = msg[: MAX_MESSAGE_CHARS - 1] + "…"
        entity = {k: v for k, v in event.entity.model_dump().items() if v is not None}
        return cls(
            event.id, event.service, event.source.value, event.kind.value, event.severity.value,
            event.timestamp, msg, event.template_id, event.template, topic, partition, offset, arrived,
            entity, dict(event.attributes),
        )


class EventLog:
    """At most ``max_events`` events that arrived within ``lookback_s``, oldest arrival first out."""

    def __init__(
        self, max_events: int = 100_000, lookback_s: float = 6 * 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_events = max_events
        self.lookback_s = lookback_s
        self.clock = clock
        self.caught_up = threading.Event()
        self._lock = threading.Lock()
        self._events: OrderedDict[str, LoggedEvent] = OrderedDict()

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)

    def add(self, events: Iterable[LoggedEvent]) -> None:
        with self._lock:
            for ev in events:
                self._events[ev.id] = ev
            while len(self._events) > self.max_events:
                self._events.popitem(last=False)

    def expire(self, now: float | None = None) -> int:
        """Drop events that arrived before ``now - lookback_s``; returns how many."""
        cutoff = (self.clock() if now is None else now) - self.lookback_s
        dropped = 0
        with self._lock:
            while self._events:
                first = next(iter(self._events.values()))
                if first.arrived >= cutoff:
                    break
                self._events.popitem(last=False)
                dropped += 1
        return dropped

    def by_ids(self, ids: Iterable[str]) -> dict[str, LoggedEvent]:
        with self._lock:
            return {i: self._events[i] for i in ids if i in self._events}

    def query(
        self,
        services: set[str] | None = None,
        kinds: set[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[LoggedEvent]:
        """Matching events in event-time order (ties by id)."""
        with self._lock:
            items = list(self._events.values())
        out = [
            e for e in items
            if (services is None or e.service in services)
            and (kinds is None or e.kind in kinds)
            and (since is None or e.timestamp >= since)
            and (until is None or e.timestamp <= until)
        ]
        out.sort(key=lambda e: (e.timestamp, e.id))
        return out

    def window_start(self) -> datetime | None:
        """Event time of the oldest logged event."""
        with self._lock:
            if not self._events:
                return None
            return min(e.timestamp for e in self._events.values())
