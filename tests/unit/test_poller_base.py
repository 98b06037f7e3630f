"""The poller base: cursor after ack, dedup, dead letters, retries, rate limits — no broker, no sleeps."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import pytest

from producers.base import STOP_FLUSH_S, Batch, DedupWindow, MalformedPayload, Poller, PollerConfig, Rejected
from producers.cursors import Cursor, MemoryCursorStore
from producers.exceptions import PublishError, RecoverableError
from producers.metrics import RecordingMetrics
from producers.ratelimit import Backoff, FakeClock, TokenBucket, parse_retry_after, with_retries
from schemas.models import Event, EventKind, Severity, Source
from tests.fakes import RecordingPublisher, decoded_dead_letters, decoded_events

T0 = datetime(2024, 5, 1, 11, 59, tzinfo=UTC)


def ev(n: int) -> Event:
    return Event(
        id=f"ev-{n}",
        source=Source.SYNTHETIC,
        kind=EventKind.LOG,
        timestamp=T0,
        service="payments",
        severity=Severity.INFO,
        message=f"line {n}",
    )


class ScriptedStream:
    """Returns (or raises) the scripted pages in order; records the cursor each fetch saw."""

    name = "scripted"

    def __init__(self, *pages: Batch | Exception) -> None:
        self.pages = list(pages)
        self.seen: list[Cursor | None] = []

    async def fetch(self, cursor: Cursor | None) -> Batch:
        self.seen.append(cursor)
        page = self.pages.pop(0) if self.pages else Batch()
        if isinstance(page, Exception):
            raise page
        return page


class AckCheckingStore(MemoryCursorStore):
    """Fails the test if a cursor is saved while records are still unacknowledged."""

    def __init__(self, publisher: RecordingPublisher) -> None:
        super().__init__()
        self.publisher = publisher

    def save(self, key: str, cursor: Cursor) -> None:
        assert not self.publisher.pending, "cursor saved before the broker acknowledged the page"
        super().save(key, cursor)


def poller(
    *streams: ScriptedStream, dedup: int = 100
) -> tuple[Poller, RecordingPublisher, AckCheckingStore, RecordingMetrics, FakeClock]:
    publisher, metrics, clock = RecordingPublisher(), RecordingMetrics(), FakeClock()
    store = AckCheckingStore(publisher)
    config = PollerConfig(Source.SYNTHETIC, "raw", "dlq", interval_s=30, dedup_window=dedup)
    return Poller(config, streams, publisher, store, clock, metrics), publisher, store, metrics, clock


def test_a_cursor_is_saved_only_after_the_broker_acknowledged_the_page() -> None:
    stream = ScriptedStream(Batch([ev(1)], cursor={"n": 1}), Batch([ev(1)], cursor={"n": 1}))
    p, publisher, store, metrics, _ = poller(stream)
    publisher.fail_flushes = 1
    assert asyncio.run(p.poll_once(stream)) is None
    assert store.load("synthetic/scripted") is None
    assert metrics.value("seismo_poller_errors_total") == 1
    assert asyncio.run(p.poll_once(stream)) is not None
    assert store.history == [("synthetic/scripted", {"n": 1})]
    assert [e.id for e in decoded_events(publisher)] == ["ev-1"]
    assert stream.seen == [None, None]


class SlowBroker(RecordingPublisher):
    """Acknowledges nothing for ``silent`` flushes (a timeout: the records stay queued)."""

    def __init__(self, silent: int) -> None:
        super().__init__()
        self.silent, self.flushes = silent, 0

    def flush(self, timeout: float = 30.0) -> None:
        self.flushes += 1
        if self.flushes <= self.silent:
            raise PublishError(f"{len(self.pending)} messages not acknowledged within {timeout:.0f}s")
        super().flush(timeout)


def slow_poller(stream: ScriptedStream, silent: int) -> tuple[Poller, SlowBroker, AckCheckingStore]:
    publisher = SlowBroker(silent)
    store = AckCheckingStore(publisher)
    config = PollerConfig(Source.SYNTHETIC, "raw", "dlq", interval_s=30)
    return Poller(config, (stream,), publisher, store, FakeClock(), RecordingMetrics()), publisher, store


def test_a_slow_broker_is_waited_for_and_the_page_then_counts_as_published() -> None:
    stream = ScriptedStream(Batch([ev(1)], cursor={"n": 1}))
    p, publisher, store = slow_poller(stream, silent=4)
    assert asyncio.run(p.poll_once(stream)) is not None
    assert store.load("synthetic/scripted") == {"n": 1}
    assert [e.id for e in decoded_events(publisher)] == ["ev-1"]


def test_a_stopping_poller_gives_up_on_an_unacknowledged_page_without_saving_its_cursor() -> None:
    stream = ScriptedStream(Batch([ev(1)], cursor={"n": 1}))
    p, publisher, store = slow_poller(stream, silent=1000)
    stop = asyncio.Event()
    stop.set()
    p._stopping = stop  # what run(stop) sets
    assert asyncio.run(p.poll_once(stream)) is None
    assert publisher.flushes == STOP_FLUSH_S  # one-second slices, then it gives up
    assert store.load("synthetic/scripted") is None


def test_events_already_published_inside_the_window_are_dropped_and_counted() -> None:
    stream = ScriptedStream(Batch([ev(1), ev(2), ev(2)]), Batch([ev(2), ev(3)]))
    p, publisher, _, metrics, _ = poller(stream)
    asyncio.run(p.cycle())
    asyncio.run(p.cycle())
    assert [e.id for e in decoded_events(publisher)] == ["ev-1", "ev-2", "ev-3"]
    assert metrics.value("seismo_poller_deduped_total") == 2
    assert metrics.value("seismo_poller_published_total", stream="scripted") == 3


def test_the_dedup_window_forgets_the_oldest_ids_beyond_its_capacity() -> None:
    window = DedupWindow(2)
    for name in ("a", "b", "c"):
        window.add(name)
    assert "a" not in window
    assert "b" in window
    assert "c" in window


def test_a_malformed_page_is_dead_lettered_and_polling_goes_on() -> None:
    bad = ScriptedStream(MalformedPayload("GET /x -> 200: response is not JSON", b"{oops"))
    good = ScriptedStream(Batch([ev(1)], [Rejected("issue not understood: KeyError('id')", b"{}")], {"n": 1}))
    good.name = "good"
    p, publisher, store, metrics, _ = poller(bad, good)
    asyncio.run(p.cycle())
    letters = decoded_dead_letters(publisher)
    assert [(d.payload, d.error_type) for d in letters] == [
        (b"{oops", "invalid_json"),
        (b"{}", "invalid_payload"),
    ]
    assert letters[0].reason == "synthetic/scripted: GET /x -> 200: response is not JSON"
    assert letters[0].component == "poller.synthetic"
    assert store.load("synthetic/scripted") is None
    assert store.load("synthetic/good") == {"n": 1}
    assert metrics.value("seismo_poller_dead_letters_total") == 2


def test_a_recoverable_error_costs_the_stream_one_cycle_without_moving_its_cursor() -> None:
    stream = ScriptedStream(RecoverableError("503"), Batch([ev(1)], cursor={"n": 1}))
    p, _publisher, store, metrics, _ = poller(stream)
    asyncio.run(p.cycle())
    assert store.load("synthetic/scripted") is None
    asyncio.run(p.cycle())
    assert store.load("synthetic/scripted") == {"n": 1}
    assert metrics.value("seismo_poller_errors_total") == 1


def test_a_cycle_reads_pages_while_the_stream_says_more_and_reports_lag() -> None:
    stream = ScriptedStream(Batch([ev(1)], cursor={"n": 1}, more=True), Batch([ev(2)], cursor={"n": 2}))
    p, _, _store, metrics, _ = poller(stream)
    assert asyncio.run(p.cycle()) == 2
    assert stream.seen == [None, {"n": 1}]
    assert metrics.value("seismo_poller_lag_seconds") == 60.0
    assert 'seismo_poller_published_total{source="synthetic",stream="scripted"} 2' in metrics.render()


def test_run_polls_every_interval_and_stops_between_pages_when_asked() -> None:
    stream = ScriptedStream(Batch([ev(1)], cursor={"n": 1}), Batch([ev(2)], cursor={"n": 2}))
    p, publisher, _, _, clock = poller(stream)

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(p.run(stop))
        async with asyncio.timeout(5):
            # acks arrive on a worker thread: poll the condition under the deadline
            while len(publisher.acked) < 2:  # noqa: ASYNC110
                await asyncio.sleep(0)
        stop.set()
        await task

    asyncio.run(main())
    assert 30 in clock.sleeps


def test_the_token_bucket_spaces_requests_at_the_configured_rate_after_a_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, burst=2, clock=clock)

    async def take(n: int) -> None:
        for _ in range(n):
            await bucket.acquire()

    start = clock.monotonic()
    asyncio.run(take(6))
    assert clock.monotonic() - start == pytest.approx(2.0)


def test_a_token_short_by_a_rounding_error_does_not_spin_the_bucket_forever() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=5.0, burst=10, clock=clock)

    async def take() -> None:
        for _ in range(200):
            await bucket.acquire()
            clock.advance(0.013)  # odd amounts of work between requests leave float residue

    asyncio.run(asyncio.wait_for(take(), timeout=10))
    assert clock.monotonic() - 1000.0 == pytest.approx((200 - 10) / 5.0, abs=0.05)


def test_retry_after_holds_every_caller_of_the_bucket_until_it_passed() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=100.0, burst=10, clock=clock)
    bucket.defer(7.0)
    start = clock.monotonic()
    asyncio.run(bucket.acquire())
    assert clock.monotonic() - start >= 7.0


def test_retry_after_is_read_as_seconds_or_as_an_http_date() -> None:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after("Wed, 01 May 2024 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_backoff_grows_exponentially_with_jitter_inside_its_bounds() -> None:
    backoff, rng = Backoff(base=1.0, cap=8.0), random.Random(1)
    for attempt, ceiling in enumerate([1.0, 2.0, 4.0, 8.0, 8.0]):
        delay = backoff.delay(attempt, rng)
        assert ceiling / 2 <= delay <= ceiling


def test_with_retries_waits_between_attempts_and_gives_up_after_the_last() -> None:
    clock, calls = FakeClock(), []

    async def flaky() -> int:
        calls.append(clock.monotonic())
        raise RecoverableError("timeout") if len(calls) < 3 else RecoverableError("429", retry_after=9)

    with pytest.raises(RecoverableError, match="429"):
        asyncio.run(with_retries(flaky, Backoff(base=1.0, max_attempts=3), clock, random.Random(3)))
    assert len(calls) == 3
    assert len(clock.sleeps) == 2
    assert 0.5 <= clock.sleeps[0] <= 1.0
    assert 1.0 <= clock.sleeps[1] <= 2.0


def test_the_fake_clock_moves_wall_time_with_its_sleeps() -> None:
    clock = FakeClock()
    before = clock.now()
    asyncio.run(clock.sleep(90))
    assert clock.now() - before == timedelta(seconds=90)
