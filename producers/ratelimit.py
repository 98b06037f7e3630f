"""Time seams, token-bucket rate limits, jittered backoff and the retry loop of every poller.

* :class:`Clock` is the only way pollers read time or wait; :class:`SystemClock`
  serves production and :class:`FakeClock` makes tests deterministic (its
  ``sleep`` advances time instantly and records the delay).
* :class:`TokenBucket` spaces a source's requests; :meth:`TokenBucket.defer`
  honours a server's ``Retry-After`` by holding every caller until then.
* :class:`Backoff` gives jittered exponential delays for 5xx and timeouts.
* :func:`with_retries` runs one request until it succeeds, retrying only
  :class:`producers.exceptions.RecoverableError`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol, TypeVar

from producers.exceptions import RecoverableError

T = TypeVar("T")


class Clock(Protocol):
    """Monotonic time for intervals plus wall time for event timestamps."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""

    def now(self) -> datetime:
        """Wall-clock time, timezone-aware UTC."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``; cancellable."""


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """A clock for tests: ``sleep`` advances time at once and records each delay in ``sleeps``."""

    def __init__(self, start: datetime | None = None) -> None:
        self._mono = 1000.0
        self._wall = start or datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self._mono

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._wall.timestamp() + self._mono - 1000.0, UTC)

    def advance(self, seconds: float) -> None:
        self._mono += max(0.0, seconds)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)


class TokenBucket:
    """``rate`` requests per second on average, bursts up to ``burst``; one bucket per source.

    :meth:`acquire` waits (on the clock) until a token is free and any
    ``Retry-After`` deferral has passed.  Not thread-safe; one event loop.
    """

    def __init__(self, rate: float, burst: int, clock: Clock) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate, self.burst, self._clock = rate, float(burst), clock
        self._tokens = float(burst)
        self._stamp = clock.monotonic()
        self._not_before = 0.0

    def _refill(self) -> None:
        now = self._clock.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def defer(self, seconds: float) -> None:
        """Hold every :meth:`acquire` for ``seconds`` from now (the server said ``Retry-After``)."""
        self._not_before = max(self._not_before, self._clock.monotonic() + max(0.0, seconds))
        self._tokens = 0.0

    async def acquire(self) -> None:
        """Take one token, waiting for it (and for a deferral) on the clock."""
        while True:
            wait = self._not_before - self._clock.monotonic()
            if wait > 0:
                await self._clock.sleep(wait)
                continue
            self._refill()
            # A token short by a rounding error counts as whole: waiting 1e-17 s would not move a
            # clock that reads ~1e3 s (below its float resolution), and the loop would never end.
            if self._tokens >= 1.0 - 1e-9:
                self._tokens = max(0.0, self._tokens - 1.0)
                return
            await self._clock.sleep((1.0 - self._tokens) / self.rate)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with "equal jitter": attempt ``n`` waits in ``[d/2, d]``, ``d = base·2ⁿ ≤ cap``."""

    base: float = 0.5
    cap: float = 60.0
    max_attempts: int = 5

    def delay(self, attempt: int, rng: random.Random) -> float:
        ceiling = min(self.cap, self.base * (2**attempt))
        return float(ceiling / 2 + rng.uniform(0, ceiling / 2))


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date); None if absent/garbled."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


async def with_retries(
    call: Callable[[], Awaitable[T]],
    backoff: Backoff,
    clock: Clock,
    rng: random.Random,
    on_retry: Callable[[RecoverableError, float], None] | None = None,
) -> T:
    """Await ``call()`` until it succeeds; retry :class:`RecoverableError` up to ``backoff.max_attempts``.

    Between attempts it waits the error's ``retry_after`` when the server gave
    one, else the jittered backoff delay.  Any other exception propagates at
    once; after the last attempt the last :class:`RecoverableError` propagates.
    """
    attempt = 0
    while True:
        try:
            return await call()
        except RecoverableError as exc:
            attempt += 1
            if attempt >= backoff.max_attempts:
                raise
            wait = exc.retry_after if exc.retry_after is not None else backoff.delay(attempt - 1, rng)
            if on_retry is not None:
                on_retry(exc, wait)
            await clock.sleep(wait)
