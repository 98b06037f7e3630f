"""Durable per-key processing state behind a two-method interface.

The correlator saves a service's state *after* the incident updates it caused
were acknowledged by the broker and *before* its input offset can be
committed (the agent saves before it moves to the next event).  A crash can
therefore only lose work that is redone on replay; the correlator ignores
redelivered events, so the redone work changes nothing.

* :class:`RedisStateStore` — production: one Redis hash per namespace
  (``seismo:{namespace}:state``, :attr:`seismo.settings.Settings.state_key`).
  A Redis outage blocks the partition with backoff until Redis is back (Seismo
  slows down, nothing is lost), until the worker is stopping or an optional
  deadline passed: then :class:`StateUnavailable` is raised, so a worker stops
  within its grace period whatever Redis does.
* :class:`MemoryStateStore` — tests, and ``SEISMO_STATE_BACKEND=memory`` where
  durability across restarts is not wanted.

(Faust tables were the first choice; their changelog recovery after a
SIGKILL left the consumer's offset bookkeeping with duplicate and missing acks
in faust-streaming 0.15, so commits stalled after a restart.  See
docs/decisions.md.)
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from stream_processors.exceptions import RecoverableError

if TYPE_CHECKING:
    from seismo.settings import Settings

log = logging.getLogger(__name__)


def _misconfigured(exc: BaseException) -> bool:
    """An error that waiting cannot cure: a refused password, a certificate that does not verify."""
    seen: BaseException | None = exc
    for _ in range(10):  # the chain of causes, bounded
        if seen is None:
            break
        if isinstance(seen, (AuthenticationError, ssl.SSLCertVerificationError)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class StateUnavailable(RecoverableError):
    """The state backend did not answer, and the store was told to stop waiting for it.

    Raised by :class:`RedisStateStore` when its ``stopping`` callable turned true,
    :meth:`RedisStateStore.stop` or ``close`` was called, or ``give_up_after_s``
    passed.  Nothing was saved by the failing call: the caller must not commit
    the offsets that call covered; a restart replays them.
    """


def _decoded(where: str, key: str, raw: bytes | str) -> dict[str, Any] | None:
    """A saved JSON object, or None (logged) when the stored bytes are not one.

    Values are decoded with ``json`` only: a value written by anything else (a
    pickle, garbage) is refused, never executed; the step then starts that key afresh.
    """
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        reason = exc.__class__.__name__
        log.error("saved state %s in %s is not JSON (%s); starting it afresh", key, where, reason)
        return None
    if not isinstance(value, dict):
        log.error("saved state %s in %s is a JSON %s, not an object; starting it afresh",
                  key, where, type(value).__name__)
        return None
    return value


class StateStore(Protocol):
    async def load(self, key: str) -> dict[str, Any] | None:
        """The saved value, or ``None``.  May block while the backend is unavailable."""

    async def save(self, key: str, value: dict[str, Any]) -> None:
        """Persist ``value``; returns only once it is durable in the backend."""

    async def load_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """The saved values of ``keys`` that have one, in one round trip."""

    async def save_many(self, values: dict[str, dict[str, Any]]) -> None:
        """Persist every value in one round trip; returns once all are durable."""

    async def close(self) -> None:
        """Stop waiting for the backend and release it; later calls may raise."""


class MemoryStateStore:
    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    async def load(self, key: str) -> dict[str, Any] | None:
        raw = self.data.get(key)
        return None if raw is None else _decoded("memory", key, raw)

    async def save(self, key: str, value: dict[str, Any]) -> None:
        self.data[key] = json.dumps(value, separators=(",", ":"))

    async def load_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        found = {k: _decoded("memory", k, self.data[k]) for k in keys if k in self.data}
        return {k: v for k, v in found.items() if v is not None}

    async def save_many(self, values: dict[str, dict[str, Any]]) -> None:
        for key, value in values.items():
            await self.save(key, value)

    async def close(self) -> None:
        """Nothing to release."""


class RedisStateStore:
    """JSON values in the Redis hash ``seismo:{namespace}:state``.

    ``stopping`` is polled while a call waits for Redis (between attempts, at
    least every 0.1 s): once it returns true the call raises
    :class:`StateUnavailable`, as it does after ``give_up_after_s`` seconds of
    failed attempts when that is set (the default waits for Redis forever).
    One attempt lasts at most ``timeout_s``.  A refused password or a server
    certificate that does not verify is raised at once (redis-py's
    ``AuthenticationError``/``ConnectionError``): no wait fixes a configuration.
    """

    def __init__(
        self,
        url: str,
        namespace: str,
        max_backoff: float = 10.0,
        stopping: Callable[[], bool] | None = None,
        give_up_after_s: float | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        self._redis = aioredis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        self._hash = f"seismo:{namespace}:state"
        self._max_backoff = max_backoff
        self._stopping = stopping or (lambda: False)
        self._give_up_after_s = give_up_after_s
        self._stopped = False

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        stopping: Callable[[], bool] | None = None,
        give_up_after_s: float | None = None,
    ) -> RedisStateStore:
        """The store of ``settings``' Redis (password and TLS included) and namespace."""
        return cls(settings.redis, settings.namespace, stopping=stopping, give_up_after_s=give_up_after_s)

    @property
    def hash_name(self) -> str:
        return self._hash

    def stop(self) -> None:
        """Make every waiting and later call raise :class:`StateUnavailable` (safe from a signal handler)."""
        self._stopped = True

    def _should_stop(self) -> bool:
        return self._stopped or self._stopping()

    async def _retry(self, op: str, key: str, call: Any) -> Any:
        delay = 0.2
        started = time.monotonic()
        while True:
            if self._should_stop():
                raise StateUnavailable(f"redis {op} {key}: the store is stopping")
            try:
                return await call()
            except (RedisConnectionError, RedisTimeoutError) as exc:
                if _misconfigured(exc):  # a wrong password or CA: raised at once, never retried
                    log.error("redis %s %s refused: %s (check SEISMO_REDIS_URL, SEISMO_REDIS_PASSWORD, "
                              "SEISMO_REDIS_CA_FILE)", op, key, exc)
                    raise
                waited = time.monotonic() - started
                limit = self._give_up_after_s
                if limit is not None and waited + delay > limit:
                    raise StateUnavailable(f"redis {op} {key} failed for {waited:.1f} s: {exc}") from exc
                log.warning("redis %s %s failed (%s); retrying in %.1fs", op, key, exc, delay)
                await self._pause(delay)
                delay = min(delay * 2, self._max_backoff)

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, waking every 0.1 s to see whether the store is stopping."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if self._should_stop():
                return
            await asyncio.sleep(min(left, 0.1))

    async def load(self, key: str) -> dict[str, Any] | None:
        raw = await self._retry("load", key, lambda: self._redis.hget(self._hash, key))
        return None if raw is None else _decoded(self._hash, key, raw)

    async def save(self, key: str, value: dict[str, Any]) -> None:
        data = json.dumps(value, separators=(",", ":"))
        await self._retry("save", key, lambda: self._redis.hset(self._hash, key, data))

    async def load_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        if not keys:
            return {}
        raws = await self._retry("load", f"{len(keys)} keys", lambda: self._redis.hmget(self._hash, keys))
        pairs = zip(keys, raws, strict=True)
        found = {k: _decoded(self._hash, k, raw) for k, raw in pairs if raw is not None}
        return {k: v for k, v in found.items() if v is not None}

    async def save_many(self, values: dict[str, dict[str, Any]]) -> None:
        if not values:
            return
        data: dict[Any, str] = {  # redis-py types hset's mapping keys invariantly
            k: json.dumps(v, separators=(",", ":")) for k, v in values.items()
        }
        await self._retry("save", f"{len(data)} keys", lambda: self._redis.hset(self._hash, mapping=data))

    async def close(self) -> None:
        """Stop waiting for Redis (see :meth:`stop`) and release the connections."""
        self._stopped = True
        await self._redis.aclose()
