"""One gate per source in front of every upstream call: shared cache, rate limit, call budget.

:meth:`SourceGuard.run` answers a tool call in this order:

1. the shared cache (key: hash of source, tool and the normalized arguments,
   under ``APP_ID:live:``) — a hit costs no upstream call;
2. an identical call already in flight in this process is awaited, not repeated;
3. the call budget (``budget_calls`` per ``budget_window_s``) and the token
   bucket (:class:`producers.ratelimit.TokenBucket`, the pollers' limiter) —
   either one refusing becomes :class:`~mcp_gateway.live.errors.Retryable`
   rather than a long wait;
4. the upstream call; a :class:`Retryable` carrying ``retry_after`` holds the
   bucket that long, so later calls fail fast instead of hammering the source.

The cache is a seam (:class:`LiveCache`): :class:`RedisLiveCache` shares answers
between replicas and degrades to no cache when Redis is down (logged, counted in
``errors``), :class:`MemoryLiveCache` serves one process and the tests.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from mcp_gateway.live.errors import Retryable
from producers.ratelimit import Clock, TokenBucket

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)


class LiveCache(Protocol):
    async def get(self, key: str) -> str | None:
        """The cached JSON, or None (a miss, or the cache is unavailable)."""

    async def set(self, key: str, value: str, ttl_s: float) -> None:
        """Store ``value`` for ``ttl_s``; never raises."""


class MemoryLiveCache:
    """One process's cache on the injected clock."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._data: dict[str, tuple[float, str]] = {}

    async def get(self, key: str) -> str | None:
        hit = self._data.get(key)
        if hit is None or hit[0] <= self._clock.monotonic():
            self._data.pop(key, None)
            return None
        return hit[1]

    async def set(self, key: str, value: str, ttl_s: float) -> None:
        if len(self._data) > 10_000:
            self._data.clear()
        self._data[key] = (self._clock.monotonic() + ttl_s, value)


class RedisLiveCache:
    """The cache every gateway replica shares; an unreachable Redis is a miss, never an error."""

    def __init__(self, url: str, timeout_s: float = 0.5) -> None:
        import redis.asyncio as aioredis

        self._redis = aioredis.Redis.from_url(url, socket_timeout=timeout_s,
                                              socket_connect_timeout=timeout_s)
        self.errors = 0
        self._down = False

    def _failed(self, op: str, exc: Exception) -> None:
        self.errors += 1
        level = logging.DEBUG if self._down else logging.WARNING  # once per outage, not per call
        self._down = True
        log.log(level, "live tool cache: redis %s failed (%s); answering without the cache", op, exc)

    async def get(self, key: str) -> str | None:
        from redis.exceptions import RedisError

        try:
            value = await self._redis.get(key)
        except (RedisError, OSError) as exc:
            self._failed("GET", exc)
            return None
        self._down = False
        return value.decode() if isinstance(value, bytes) else value

    async def set(self, key: str, value: str, ttl_s: float) -> None:
        from redis.exceptions import RedisError

        try:
            await self._redis.set(key, value, px=max(1, int(ttl_s * 1000)))
        except (RedisError, OSError) as exc:
            self._failed("SET", exc)

    async def close(self) -> None:
        await self._redis.aclose()


class CallBudget:
    """At most ``calls`` upstream calls per fixed window of ``window_s``."""

    def __init__(self, calls: int, window_s: float, clock: Clock) -> None:
        self.calls, self.window_s, self._clock = calls, window_s, clock
        self._start, self._used = clock.monotonic(), 0

    def take(self) -> float | None:
        """Count one call; None when allowed, else the seconds until the window resets."""
        now = self._clock.monotonic()
        if now - self._start >= self.window_s:
            self._start, self._used = now, 0
        if self._used >= self.calls:
            return self._start + self.window_s - now
        self._used += 1
        return None


def cache_key(namespace: str, source: str, tool: str, args: Mapping[str, Any]) -> str:
    normalized = json.dumps({"s": source, "t": tool, "a": args}, sort_keys=True, default=str)
    return f"{namespace}:live:{hashlib.sha256(normalized.encode()).hexdigest()}"


@dataclass
class SourceGuard:
    """The gate of one source; see the module docstring.  ``upstream_calls`` counts calls made."""

    source: str
    bucket: TokenBucket
    budget: CallBudget
    cache: LiveCache
    clock: Clock
    namespace: str = "seismo"
    ttl_s: float = 30.0
    max_wait_s: float = 5.0
    upstream_calls: int = 0
    cache_hits: int = 0
    _inflight: dict[str, asyncio.Future[str]] = field(default_factory=dict)
    _hold_until: float = 0.0

    async def run(self, tool: str, args: Mapping[str, Any], model: type[M],
                  fetch: Callable[[], Awaitable[M]], cache_if: Callable[[M], bool] | None = None) -> M:
        """The cached or freshly fetched answer; raises what ``fetch`` raises, or :class:`Retryable`.

        ``cache_if`` says whether an answer may be cached (e.g. not a query still running)."""
        key = cache_key(self.namespace, self.source, tool, args)
        cached = await self.cache.get(key)
        if cached is None and key in self._inflight:
            cached = await asyncio.shield(self._inflight[key])
        if cached is not None:
            self.cache_hits += 1
            return model.model_validate_json(cached)
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await self._call(tool, fetch)
            text = result.model_dump_json()
            future.set_result(text)
            if cache_if is None or cache_if(result):
                await self.cache.set(key, text, self.ttl_s)
            return result
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, no "never retrieved" warning
            raise
        finally:
            del self._inflight[key]

    async def _call(self, tool: str, fetch: Callable[[], Awaitable[M]]) -> M:
        wait = self.budget.take()
        if wait is not None:
            raise Retryable(f"the gateway's call budget for {self.source} is spent", wait)
        held = self._hold_until - self.clock.monotonic()
        if held > self.max_wait_s:
            raise Retryable(f"{self.source} asked the gateway to slow down (rate limit)", held)
        try:
            await asyncio.wait_for(self.bucket.acquire(), self.max_wait_s)
        except TimeoutError:
            limit = f"the gateway's rate limit for {self.source} is reached"
            raise Retryable(limit, self.max_wait_s) from None
        self.upstream_calls += 1
        try:
            return await fetch()
        except Retryable as exc:
            if exc.retry_after is not None:
                self.bucket.defer(exc.retry_after)
                self._hold_until = max(self._hold_until, self.clock.monotonic() + exc.retry_after)
            log.info("live %s/%s: %s", self.source, tool, exc)
            raise
