"""The common poller base: streams, the run loop, dedup, dead letters and metrics.

A source (Sentry, Grafana, Kubernetes, CloudWatch …) is a set of
:class:`Stream` objects.  A stream only *reads*: ``fetch(cursor)`` returns a
:class:`Batch` of events, rejected payloads and the cursor after them.  The
:class:`Poller` does the rest, in this order for every batch:

1. publish new events to the raw topic (key = service) and rejected payloads
   to the dead-letter topic, skipping event ids already published inside the
   dedup window;
2. ``flush`` — block until the broker acknowledged all of them;
3. only then save the batch's cursor (:mod:`producers.cursors`).

A crash between 2 and 3 re-reads one batch after restart (at-least-once;
the ids are stable so consumers drop the repeats); nothing is ever skipped.

Errors: a :class:`~producers.exceptions.RecoverableError` that survives the
source's retries costs that stream one cycle (counted in ``errors``); a
:class:`MalformedPayload` (a page that is not valid JSON) is dead-lettered
and the stream is read again next cycle; any other exception stops the poller.
A failure of *one object* inside a stream (a deleted pod, a missing event, a
failing query) never reaches this loop: the stream handles it by the rules of
:mod:`producers.sources.objects` (skip, retry next cycle, park and dead-letter).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from producers.cursors import Cursor, CursorStore, cursor_key
from producers.exceptions import DeliveryFailed, InvalidEvent, PublishError, RecoverableError
from producers.metrics import Metrics
from producers.publisher import EventPublisher
from producers.ratelimit import Backoff, Clock, TokenBucket, with_retries
from schemas.codec import codec_for
from schemas.models import DeadLetter, Event, Source

log = logging.getLogger(__name__)
T = TypeVar("T")
STOP_FLUSH_S = 5.0  # how long a stopping poller waits for the broker to acknowledge its last page


class MalformedPayload(InvalidEvent):
    """A response or item that can never parse; it is dead-lettered with ``payload`` and the reason."""

    def __init__(self, reason: str, payload: bytes, error_type: str = "invalid_json") -> None:
        super().__init__(reason, error_type)
        self.payload = payload


@dataclass(frozen=True)
class Rejected:
    """One item of a page that could not become an Event (it goes to the DLQ; the cursor moves on)."""

    reason: str
    payload: bytes
    error_type: str = "invalid_payload"


@dataclass(frozen=True)
class Batch:
    """What one ``fetch`` read.  ``cursor=None`` leaves the stored cursor as it is;
    ``more=True`` says another page is ready now (the poller fetches it in the same cycle)."""

    events: Sequence[Event] = ()
    rejected: Sequence[Rejected] = ()
    cursor: Cursor | None = None
    more: bool = False


class Stream(Protocol):
    """One cursored feed of a source, e.g. ``issues:acme/payments``."""

    @property
    def name(self) -> str:
        """Unique within the source; part of the cursor key ``source/name``."""

    async def fetch(self, cursor: Cursor | None) -> Batch:
        """Read the page after ``cursor``.  Performs I/O; raises RecoverableError or MalformedPayload."""


@dataclass
class SourceContext:
    """What every stream of one source shares: time, the rate limit, the retry policy and metrics.

    ``object_attempts`` and ``park_s`` bound how long one failing object (a pod's logs, an
    issue's latest event, a log group, a query) is retried before it is parked and for how
    long it stays parked (:mod:`producers.sources.objects`).
    """

    source: Source
    clock: Clock
    limiter: TokenBucket
    metrics: Metrics
    backoff: Backoff = field(default_factory=Backoff)
    rng: random.Random = field(default_factory=random.Random)
    object_attempts: int = 3
    park_s: float = 900.0

    async def call(self, stream: str, request: Callable[[], Awaitable[T]]) -> T:
        """Run ``request`` under the rate limit, retrying RecoverableError with backoff.

        A ``retry_after`` on the error (HTTP 429/503 ``Retry-After``) holds the
        whole source's bucket for that long.  Raises the last RecoverableError
        after ``backoff.max_attempts`` attempts.
        """
        labels = {"source": self.source.value, "stream": stream}

        async def attempt() -> T:
            await self.limiter.acquire()
            return await request()

        def on_retry(exc: RecoverableError, wait: float) -> None:
            self.metrics.increment("seismo_poller_retries_total", 1, labels)
            if exc.retry_after is not None:
                self.limiter.defer(exc.retry_after)
            log.info("%s/%s: %s; retrying in %.1fs", self.source.value, stream, exc, wait)

        return await with_retries(attempt, self.backoff, self.clock, self.rng, on_retry)


class DedupWindow:
    """Remembers the last ``capacity`` event ids (fingerprints); older ones are forgotten."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def add(self, event_id: str) -> None:
        self._ids[event_id] = None
        self._ids.move_to_end(event_id)
        while len(self._ids) > self.capacity:
            self._ids.popitem(last=False)


@dataclass(frozen=True)
class PollerConfig:
    """Where a poller writes and how often it polls."""

    source: Source
    raw_topic: str
    dlq_topic: str
    interval_s: float = 30.0
    dedup_window: int = 10_000
    max_pages_per_cycle: int = 50


class Poller:
    """Runs the streams of one source.  One event loop; not thread-safe."""

    def __init__(
        self,
        config: PollerConfig,
        streams: Sequence[Stream],
        publisher: EventPublisher,
        cursors: CursorStore,
        clock: Clock,
        metrics: Metrics,
    ) -> None:
        self.config, self.streams = config, list(streams)
        self._publisher, self._cursors = publisher, cursors
        self._clock, self._metrics = clock, metrics
        self.dedup = DedupWindow(config.dedup_window)
        self._stopping: asyncio.Event | None = None
        self._event_codec, self._dlq_codec = codec_for("event"), codec_for("dead_letter")

    def key(self, stream: Stream) -> str:
        return cursor_key(self.config.source.value, stream.name)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every stream each ``interval_s`` until ``stop`` is set; stops between pages, not mid-batch.

        A page whose events the broker has not acknowledged when ``stop`` is set is given up
        after ``STOP_FLUSH_S`` (its cursor is not saved: the next run reads it again and the
        events keep their ids), so a stop is not held by a broker that is away."""
        self._stopping = stop
        while not stop.is_set():
            await self.cycle(stop)
            if stop.is_set():
                break
            sleeper = asyncio.ensure_future(self._clock.sleep(self.config.interval_s))
            stopper = asyncio.ensure_future(stop.wait())
            _, pending = await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def cycle(self, stop: asyncio.Event | None = None) -> int:
        """Read each stream until it has no page ready (or ``max_pages_per_cycle``); return pages read."""
        pages = 0
        for stream in self.streams:
            for _ in range(self.config.max_pages_per_cycle):
                if stop is not None and stop.is_set():
                    return pages
                batch = await self.poll_once(stream)
                pages += 1
                if batch is None or not batch.more:
                    break
        return pages

    async def poll_once(self, stream: Stream) -> Batch | None:
        """Fetch one page, publish it, wait for the acks, then save its cursor.

        Returns the batch, or None when the page could not be read this time
        (the error is logged and counted; the cursor did not move).
        """
        labels = {"source": self.config.source.value, "stream": stream.name}
        key = self.key(stream)
        try:
            batch = await stream.fetch(self._cursors.load(key))
        except MalformedPayload as exc:
            self._metrics.increment("seismo_poller_errors_total", 1, labels)
            await self._publish(stream.name, [], [Rejected(exc.reason, exc.payload, exc.error_type)])
            return None
        except RecoverableError as exc:
            self._metrics.increment("seismo_poller_errors_total", 1, labels)
            log.warning("%s: giving up this cycle: %s", key, exc)
            return None
        self._metrics.increment("seismo_poller_polled_total", len(batch.events) + len(batch.rejected), labels)
        fresh = self._fresh(batch.events)
        self._metrics.increment("seismo_poller_deduped_total", len(batch.events) - len(fresh), labels)
        try:
            await self._publish(stream.name, fresh, batch.rejected)
            if batch.cursor is not None:
                await asyncio.to_thread(self._cursors.save, key, batch.cursor)
        except RecoverableError as exc:
            self._metrics.increment("seismo_poller_errors_total", 1, labels)
            log.warning("%s: not acknowledged, the page will be read again: %s", key, exc)
            return None
        for event in fresh:
            self.dedup.add(event.id)
        self._metrics.increment("seismo_poller_published_total", len(fresh), labels)
        if batch.events:
            newest = max(e.timestamp for e in batch.events)
            lag = (self._clock.now() - newest).total_seconds()
            self._metrics.gauge("seismo_poller_lag_seconds", max(0.0, lag), labels)
        return batch

    def _fresh(self, events: Sequence[Event]) -> list[Event]:
        seen: set[str] = set()
        fresh = []
        for event in events:
            if event.id in self.dedup or event.id in seen:
                continue
            seen.add(event.id)
            fresh.append(event)
        return fresh

    async def _publish(self, stream: str, events: Sequence[Event], rejected: Sequence[Rejected]) -> None:
        labels = {"source": self.config.source.value, "stream": stream}
        for event in events:
            value = self._event_codec.encode(event.to_avro())
            self._publisher.publish(self.config.raw_topic, event.service.encode("utf-8"), value)
        for item in rejected:
            letter = DeadLetter(
                reason=f"{self.config.source.value}/{stream}: {item.reason}",
                error_type=item.error_type,
                component=f"poller.{self.config.source.value}",
                payload=item.payload,
            )
            self._publisher.publish(self.config.dlq_topic, None, self._dlq_codec.encode(letter.to_avro()))
            log.warning("dead-lettered a %s payload: %s", stream, item.reason)
        self._metrics.increment("seismo_poller_dead_letters_total", len(rejected), labels)
        await self._flush()

    async def _flush(self) -> None:
        """Wait for the broker's acknowledgements in one-second slices (30 s in all, as the
        publisher's own flush), and at most ``STOP_FLUSH_S`` more once the poller is stopping."""
        waited = 0.0
        while True:
            try:
                await asyncio.to_thread(self._publisher.flush, 1.0)
                return
            except DeliveryFailed:
                raise  # those messages are gone: the page is read again
            except PublishError:
                waited += 1.0
                stopping = self._stopping is not None and self._stopping.is_set()
                if waited >= 30.0 or (stopping and waited >= STOP_FLUSH_S):
                    raise
