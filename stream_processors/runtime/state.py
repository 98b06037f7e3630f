"""Durable per-key processing state behind a two-method interface.

The correlator saves a service's state *after* the incident updates it caused
were acknowledged by the broker and *before* its input offset can be
committed (the agent saves before it moves to the next event).  A crash can
therefore only lose work that is redone on replay; the correlator ignores
redelivered events, so the redone work changes nothing.

* :class:`RedisStateStore` — production: one Redis hash per app id.  A Redis
  outage blocks the partition with backoff until Redis is back (Seismo slows
  down, nothing is lost).
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
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)


class StateStore(Protocol):
    async def load(self, key: str) -> dict[str, Any] | None:
        """The saved value, or ``None``.  May block while the backend is unavailable."""

    async def save(self, key: str, value: dict[str, Any]) -> None:
        """Persist ``value``; returns only once it is durable in the backend."""

    async def load_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """The saved values of ``keys`` that have one, in one round trip."""

    async def save_many(self, values: dict[str, dict[str, Any]]) -> None:
        """Persist every value in one round trip; returns once all are durable."""


class MemoryStateStore:
    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    async def load(self, key: str) -> dict[str, Any] | None:
        raw = self.data.get(key)
        return None if raw is None else dict(json.loads(raw))

    async def save(self, key: str, value: dict[str, Any]) -> None:
        self.data[key] = json.dumps(value, separators=(",", ":"))

    async def load_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        return {k: dict(json.loads(self.data[k])) for k in keys if k in self.data}

    async def save_many(self, values: dict[str, dict[str, Any]]) -> None:
        for key, value in values.items():
            await self.save(key, value)


class RedisStateStore:
    """JSON values in the Redis hash ``seismo:{namespace}:state``."""

    def __init__(self, url: str, namespace: str, max_backoff: float = 10.0) -> None:
        self._redis = aioredis.Redis.from_url(url, socket_timeout=5.0, socket_connect_timeout=5.0)
        self._hash = f"seismo:{namespace}:state"
        self._max_backoff = max_backoff

    async def _retry(self, op: str, key: str, call: Any) -> Any:
        delay = 0.2
        while True:
            try:
                return await call()
            except (RedisConnectionError, RedisTimeoutError) as exc:
                log.warning("redis %s %s failed (%s); retrying in %.1fs", op, key, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_backoff)

    async def load(self, key: str) -> dict[str, Any] | None:
        raw = await self._retry("load", key, lambda: self._redis.hget(self._hash, key))
        return None if raw is None else dict(json.loads(raw))

    async def save(self, key: str, value: dict[str, Any]) -> None:
        data = json.dumps(value, separators=(",", ":"))
        await self._retry("save", key, lambda: self._redis.hset(self._hash, key, data))

    async def load_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        if not keys:
            return {}
        raws = await self._retry("load", f"{len(keys)} keys", lambda: self._redis.hmget(self._hash, keys))
        return {k: dict(json.loads(raw)) for k, raw in zip(keys, raws, strict=True) if raw is not None}

    async def save_many(self, values: dict[str, dict[str, Any]]) -> None:
        if not values:
            return
        data: dict[Any, str] = {  # redis-py types hset's mapping keys invariantly
            k: json.dumps(v, separators=(",", ":")) for k, v in values.items()
        }
        await self._retry("save", f"{len(data)} keys", lambda: self._redis.hset(self._hash, mapping=data))

    async def close(self) -> None:
        await self._redis.aclose()
