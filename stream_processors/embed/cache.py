"""Embeddings computed once per template: an in-process LRU in front of Redis.

Keys are ``{namespace}:{model_version}:{key}`` where ``key`` is a template id
(:meth:`CachedEmbedder.embed_keyed`) or ``t:`` + a hash of the text (:meth:`embed`);
values are the vector's raw float32 bytes (little-endian, ``dim * 4`` bytes). A
lookup goes LRU → Redis (one ``MGET`` for all LRU misses) → the inner engine (one
call for all Redis misses, written back with one pipeline). A template keeps the
vector of the text it was first embedded with: ids are stable while a template
widens, and the wildcards it gains barely move its meaning.

When Redis is unreachable the cache logs a warning, serves from the LRU and the
engine, and tries Redis again after ``retry_s`` seconds (measured by ``clock``).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stream_processors.embed.base import Embedder, Vectors, empty

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)

DEFAULT_NAMESPACE = "seismo:embed"
"""For tools and benchmarks; a deployment passes ``Settings.embed_cache_prefix``
(``seismo:{namespace}:embed``), so two namespaces sharing a Redis never share vectors."""


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Counters since construction (or the last :meth:`CachedEmbedder.reset_stats`)."""

    lookups: int
    hits_lru: int
    hits_redis: int
    inner_calls: int
    texts_embedded: int
    inner_seconds: float
    redis_errors: int

    @property
    def hit_ratio(self) -> float:
        """Share of lookups served without the engine (LRU or Redis)."""
        return (self.hits_lru + self.hits_redis) / self.lookups if self.lookups else 0.0

    @property
    def embeddings_per_s(self) -> float:
        """Texts per second of the engine, over the time spent inside it."""
        return self.texts_embedded / self.inner_seconds if self.inner_seconds > 0 else 0.0


class CachedEmbedder:
    """An :class:`Embedder` that computes each key's vector once, across restarts.

    Blocking and not thread-safe (one per worker thread). ``redis_url=None`` keeps
    the LRU only. Never raises on Redis failures; engine errors propagate and
    nothing of that batch is cached.
    """

    def __init__(
        self,
        inner: Embedder,
        redis_url: str | None,
        lru_size: int = 10_000,
        namespace: str = DEFAULT_NAMESPACE,
        retry_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self.lru_size = lru_size
        self.prefix = f"{namespace}:{inner.model_version}:"
        self._lru: OrderedDict[str, bytes] = OrderedDict()
        self._redis: redis.Redis | None = None
        if redis_url is not None:
            import redis as redis_lib

            self._redis = redis_lib.Redis.from_url(redis_url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._retry_s = retry_s
        self._clock = clock
        self._down_until: float | None = None
        self.reset_stats()

    @property
    def model_version(self) -> str:
        return self.inner.model_version

    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def redis_up(self) -> bool:
        """False while Redis is configured but treated as down."""
        return self._redis is not None and self._down_until is None

    def reset_stats(self) -> None:
        self.lookups = 0
        self.hits_lru = 0
        self.hits_redis = 0
        self.inner_calls = 0
        self.texts_embedded = 0
        self.inner_seconds = 0.0
        self.redis_errors = 0

    def stats(self) -> CacheStats:
        return CacheStats(
            self.lookups,
            self.hits_lru,
            self.hits_redis,
            self.inner_calls,
            self.texts_embedded,
            self.inner_seconds,
            self.redis_errors,
        )

    def embed(self, texts: list[str]) -> Vectors:
        """Vectors of ``texts``, cached by a hash of each text."""
        keys = ["t:" + hashlib.blake2b(t.encode("utf-8"), digest_size=16).hexdigest() for t in texts]
        return self.embed_keyed(keys, texts)

    def embed_keyed(self, keys: Sequence[str], texts: Sequence[str]) -> Vectors:
        """Vectors for ``keys`` (template ids), computing ``texts`` only for keys never seen.

        Row ``i`` belongs to ``keys[i]``; a key repeated in one call is computed once.
        """
        import numpy as np

        if len(keys) != len(texts):
            raise ValueError("keys and texts differ in length")
        if not keys:
            return empty(self.dim)
        self.lookups += len(keys)
        found: dict[str, bytes] = {}
        missing: dict[str, None] = {}  # insertion-ordered set
        for key in keys:
            blob = self._lru.get(key)
            if blob is not None:
                self._lru.move_to_end(key)
                found[key] = blob
                self.hits_lru += 1
            elif key in missing:
                self.hits_lru += 1  # a repeat within this call: served with its first occurrence
            else:
                missing[key] = None
        if missing:
            from_redis = self._redis_get(list(missing))
            self.hits_redis += len(from_redis)
            found.update(from_redis)
            todo = [k for k in missing if k not in from_redis]
            if todo:
                text_of = dict(zip(keys, texts, strict=True))
                found.update(self._compute(todo, [text_of[k] for k in todo]))
            for key in missing:
                self._remember(key, found[key])
        out = np.empty((len(keys), self.dim), dtype=np.float32)
        for row, key in enumerate(keys):
            out[row] = np.frombuffer(found[key], dtype="<f4")
        return out

    def cached(self, keys: Sequence[str]) -> dict[str, Vectors]:
        """The vectors already cached (LRU or Redis) for ``keys``; never computes."""
        import numpy as np

        result: dict[str, bytes] = {k: self._lru[k] for k in keys if k in self._lru}
        result.update(self._redis_get([k for k in keys if k not in result]))
        return {k: np.frombuffer(v, dtype="<f4").copy() for k, v in result.items()}

    def _compute(self, keys: list[str], texts: list[str]) -> dict[str, bytes]:
        import numpy as np

        start = time.perf_counter()
        vectors = self.inner.embed(texts)
        self.inner_seconds += time.perf_counter() - start
        self.inner_calls += 1
        self.texts_embedded += len(texts)
        blobs = {
            k: np.ascontiguousarray(v, dtype="<f4").tobytes() for k, v in zip(keys, vectors, strict=True)
        }
        self._redis_set(blobs)
        return blobs

    def _remember(self, key: str, blob: bytes) -> None:
        self._lru[key] = blob
        self._lru.move_to_end(key)
        while len(self._lru) > self.lru_size:
            self._lru.popitem(last=False)

    def _usable(self) -> redis.Redis | None:
        if self._redis is None:
            return None
        if self._down_until is not None:
            if self._clock() < self._down_until:
                return None
            self._down_until = None
        return self._redis

    def _failed(self, op: str, exc: Exception) -> None:
        self.redis_errors += 1
        self._down_until = self._clock() + self._retry_s
        log.warning(
            "embedding cache: redis %s failed (%s); using the in-process LRU only, retrying in %.0fs",
            op,
            exc,
            self._retry_s,
        )

    def _redis_get(self, keys: list[str]) -> dict[str, bytes]:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        client = self._usable()
        if client is None or not keys:
            return {}
        try:
            values = client.mget([self.prefix + k for k in keys])
        except (RedisConnectionError, RedisTimeoutError) as exc:
            self._failed("MGET", exc)
            return {}
        size = self.dim * 4
        return {
            k: bytes(v) for k, v in zip(keys, values, strict=True) if isinstance(v, bytes) and len(v) == size
        }

    def _redis_set(self, blobs: dict[str, bytes]) -> None:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        client = self._usable()
        if client is None:
            return
        try:
            client.mset({self.prefix + k: v for k, v in blobs.items()})
        except (RedisConnectionError, RedisTimeoutError) as exc:
            self._failed("MSET", exc)

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()
