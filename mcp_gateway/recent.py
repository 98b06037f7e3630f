"""Semantic search over recent enriched events: the window behind the ``search_events`` tool.

Kafka is the persistence. :class:`~mcp_gateway.events_feed.RecentEventsMaterializer` reads
``seismo.events.enriched`` from ``max(beginning, first record of the last
SEISMO_SEARCH_LOOKBACK_S, end - SEISMO_SEARCH_MAX_EVENTS)`` of every partition to
its end and then follows it, so a restarted gateway rebuilds the same window by
re-reading the recent part of the topic. Nothing is written to local disk.

:class:`RecentEvents` holds the window: at most ``max_events`` events that arrived
within ``lookback_s`` (arrival = the Kafka record timestamp, so replayed old data is
searchable too), the oldest (by arrival) going first. Vectors are per template and
come from the same :class:`~stream_processors.embed.CachedEmbedder` keys the worker
fills (Redis, ``seismo:embed:{model version}:{template id}``): the gateway computes an
embedding only for a template the worker never cached, and events of one template
share one vector and one faiss row (:class:`~stream_processors.embed.EventSearchIndex`).
A search embeds the query with the same engine, ranks templates by cosine and returns,
per template, the recent events that pass the filters.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from schemas.models import Event
from stream_processors.embed import CachedEmbedder, Embedder, EventSearchIndex

if TYPE_CHECKING:
    from seismo.settings import Settings
    from stream_processors.embed.base import Vectors

log = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 1000
"""Longer messages are kept (and returned) cut to this many characters, ending in "…"."""
EVENT_IDS_PER_HIT = 5
DISABLED = (
    "semantic search is disabled (SEISMO_EMBEDDER=off): set SEISMO_EMBEDDER=minilm "
    "(or hash) and restart the gateway"
)


class EmptyQuery(ValueError):
    """The search query has no text."""


class EventSummary(BaseModel):
    """One event as stored on ``seismo.events.enriched`` (message already redacted)."""

    id: str
    service: str
    source: str
    kind: str
    severity: str
    timestamp: datetime
    message: str = Field(description=f"Redacted message, cut to {MAX_MESSAGE_CHARS} characters.")


class SearchHit(BaseModel):
    """One template (a message pattern) and the recent events of it that pass the filters."""

    score: float = Field(description="Cosine similarity of the query and the template, 1 = same meaning.")
    template_id: str | None = Field(description="Null for an event that had no template.")
    template: str = Field(description="The message pattern: variable parts are <PLACEHOLDERS>.")
    count: int = Field(description="Matching events of this template in the searched window.")
    first_seen: datetime = Field(description="Event time of the oldest matching event.")
    last_seen: datetime = Field(description="Event time of the newest matching event.")
    services: list[str]
    sources: list[str]
    latest: EventSummary = Field(description="The newest matching event.")
    event_ids: list[str] = Field(
        description=f"Ids of the newest matching events (at most {EVENT_IDS_PER_HIT}), newest first."
    )


class SearchResults(BaseModel):
    """Templates most similar to the query, best first."""

    query: str
    hits: list[SearchHit]
    catching_up: bool = Field(
        description="True while the gateway is still reading recent events from Kafka: "
        "results may be incomplete; ask again shortly."
    )
    indexed_events: int = Field(description="Events in the searched window (before filters).")
    window_start: datetime | None = Field(
        description="Arrival time of the oldest searched event; earlier events are not searched."
    )


@dataclass(frozen=True, slots=True)
class _Entry:
    id: str
    service: str
    source: str
    kind: str
    severity: str
    timestamp: datetime
    message: str
    template_id: str | None
    arrived: float  # epoch seconds (Kafka record timestamp)

    def order(self) -> tuple[datetime, str]:
        return (self.timestamp, self.id)

    def summary(self) -> EventSummary:
        return EventSummary(
            id=self.id, service=self.service, source=self.source, kind=self.kind,
            severity=self.severity, timestamp=self.timestamp, message=self.message,
        )


def _key_and_text(event: Event) -> tuple[str, str]:
    """The vector key of an event (its template id, the worker's cache key) and the text
    to embed when nobody cached that key yet."""
    if event.template_id and event.template is not None:
        return event.template_id, event.template
    # Same key scheme as CachedEmbedder.embed for plain texts.
    digest = hashlib.blake2b(event.message.encode("utf-8"), digest_size=16).hexdigest()
    return "t:" + digest, event.message


def _cut(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE_CHARS else message[: MAX_MESSAGE_CHARS - 1] + "…"


class RecentEvents:
    """The bounded, searchable window of recent events.

    One feeding thread calls :meth:`add` and :meth:`expire` (they use ``cache``, which
    is not thread-safe); any number of threads call :meth:`search`. Every method takes
    the lock only for in-memory work: embedding the query and fetching vectors happen
    outside it.
    """

    def __init__(
        self,
        cache: CachedEmbedder,
        max_events: int = 100_000,
        lookback_s: float = 6 * 3600.0,
        query_embedder: Embedder | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cache = cache
        self.query_embedder = query_embedder if query_embedder is not None else cache.inner
        self.max_events = max_events
        self.lookback_s = lookback_s
        self.clock = clock
        self.caught_up = threading.Event()
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._templates: dict[str, str] = {}  # key -> newest template text
        self._index = EventSearchIndex(cache, capacity=max_events, on_evict=self._forget)

    def __len__(self) -> int:
        with self._lock:
            return len(self._index)

    def stats(self) -> dict[str, int | bool]:
        """For ``/healthz``: window size, templates, whether caught up, engine calls."""
        with self._lock:
            events, templates = len(self._index), len(self._index.keys())
        return {
            "caught_up": self.caught_up.is_set(),
            "events": events,
            "templates": templates,
            "templates_embedded": self.cache.texts_embedded,
        }

    def _forget(self, event_id: str, key: str) -> None:
        # Called by the index, under self._lock, for each event leaving the window.
        self._entries.pop(event_id, None)
        if not self._index.has_key(key):
            self._templates.pop(key, None)

    def add(self, events: Sequence[tuple[Event, float]]) -> int:
        """Index ``(event, arrival epoch seconds)`` in arrival order; returns how many were new.

        Fetches the vectors of templates not in the window yet from the cache (Redis), and
        computes those nobody cached; raises what the engine raises (nothing is indexed then).
        """
        import numpy as np

        fresh: dict[str, tuple[Event, float, str, str]] = {}
        for event, arrived in events:
            if event.id not in self._entries and event.id not in fresh:
                key, text = _key_and_text(event)
                fresh[event.id] = (event, arrived, key, text)
        if not fresh:
            return 0
        missing = {key: text for _, _, key, text in fresh.values() if not self._index.has_key(key)}
        vectors: Vectors = np.zeros((len(fresh), self.cache.dim), dtype=np.float32)
        if missing:
            got = self.cache.embed_keyed(list(missing), list(missing.values()))
            row_of = {key: row for row, key in enumerate(missing)}
            for i, (_, _, key, _) in enumerate(fresh.values()):
                if key in row_of:
                    vectors[i] = got[row_of[key]]
        with self._lock:
            for event, arrived, key, text in fresh.values():
                self._entries[event.id] = _Entry(
                    event.id, event.service, event.source.value, event.kind.value, event.severity.value,
                    event.timestamp, _cut(event.message), event.template_id, arrived,
                )
                self._templates[key] = text
            return self._index.add_many(list(fresh), vectors, [f[2] for f in fresh.values()])

    def expire(self, now: float | None = None) -> int:
        """Drop events that arrived before ``now - lookback_s`` (oldest first); returns how many."""
        cutoff = (self.clock() if now is None else now) - self.lookback_s
        dropped = 0
        with self._lock:
            while (oldest := self._index.oldest()) is not None and self._entries[oldest].arrived < cutoff:
                self._index.evict_oldest(1)
                dropped += 1
        return dropped

    def search(
        self,
        query: str,
        service: str | None = None,
        source: str | None = None,
        since: datetime | None = None,
        limit: int = 20,
    ) -> SearchResults:
        """The ``limit`` templates most similar to ``query`` that have matching events, best
        first (ties by template key, so the answer does not depend on arrival order).

        Raises :class:`EmptyQuery` for a blank query.
        """
        text = query.strip()
        if not text:
            raise EmptyQuery("query is empty: describe what to look for, e.g. 'database connection refused'")
        vector = self.query_embedder.embed([text])[0]
        with self._lock:
            hits = self._rank(vector, service, source, since, limit)
            oldest = self._index.oldest()
            start = None if oldest is None else datetime.fromtimestamp(self._entries[oldest].arrived, UTC)
            size = len(self._index)
        return SearchResults(
            query=text, hits=hits, catching_up=not self.caught_up.is_set(), indexed_events=size,
            window_start=start,
        )

    def _rank(
        self, vector: Vectors, service: str | None, source: str | None, since: datetime | None, limit: int
    ) -> list[SearchHit]:
        total = len(self._index.keys())
        k = max(64, 4 * limit)
        while total:
            ranked = sorted(self._index.search_keys(vector, min(k, total)), key=lambda r: (-r[1], r[0]))
            scored: list[tuple[float, SearchHit]] = []
            for key, score in ranked:
                # Past `limit`, go on only through ties with the last kept hit (a stable cut).
                if len(scored) >= limit and score < scored[limit - 1][0]:
                    break
                hit = self._hit(key, score, service, source, since)
                if hit is not None:
                    scored.append((score, hit))
            # Keys not fetched score at most ranked[-1]: done unless they could still make the cut.
            if k >= total or (len(scored) >= limit and ranked[-1][1] < scored[limit - 1][0]):
                return [hit for _, hit in scored[:limit]]
            k *= 4
        return []

    def _hit(
        self, key: str, score: float, service: str | None, source: str | None, since: datetime | None
    ) -> SearchHit | None:
        matched = [
            e for e in (self._entries[i] for i in self._index.events_of(key))
            if (service is None or e.service == service)
            and (source is None or e.source == source)
            and (since is None or e.timestamp >= since)
        ]
        if not matched:
            return None
        newest = heapq.nlargest(EVENT_IDS_PER_HIT, matched, key=_Entry.order)
        return SearchHit(
            score=round(score, 4),
            template_id=newest[0].template_id,
            template=self._templates[key],
            count=len(matched),
            first_seen=min(e.timestamp for e in matched),
            last_seen=newest[0].timestamp,
            services=sorted({e.service for e in matched}),
            sources=sorted({e.source for e in matched}),
            latest=newest[0].summary(),
            event_ids=[e.id for e in newest],
        )


def recent_events(settings: Settings) -> RecentEvents:
    """The window configured by ``settings`` (engine, Redis cache, bounds).

    The engine and the cache keys are the worker's (``SEISMO_EMBEDDER``, Redis unless
    ``SEISMO_STATE_BACKEND=memory``). Raises :class:`~stream_processors.embed.EmbedError`
    when the model is not installed; ``SEISMO_EMBEDDER=off`` is the caller's to check.
    """
    from stream_processors.embed.engine import configured_cache

    if settings.embedder == "off":
        raise ValueError(DISABLED)
    return RecentEvents(configured_cache(settings), settings.search_max_events, settings.search_lookback_s)
