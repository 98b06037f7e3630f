"""CachedEmbedder without Redis: LRU, batching of misses, counters."""

from __future__ import annotations

import numpy as np

from stream_processors.embed import CachedEmbedder, HashEmbedder
from stream_processors.embed.base import Vectors


class Recording(HashEmbedder):
    """A HashEmbedder that remembers the batch of every call."""

    def __init__(self) -> None:
        super().__init__(dim=16)
        self.batches: list[list[str]] = []

    def embed(self, texts: list[str]) -> Vectors:
        self.batches.append(list(texts))
        return super().embed(texts)


def test_misses_of_one_call_reach_the_engine_in_one_batch() -> None:
    inner = Recording()
    cache = CachedEmbedder(inner, redis_url=None)
    cache.embed_keyed(["T1", "T2", "T3"], ["a", "b", "c"])
    assert inner.batches == [["a", "b", "c"]]
    assert (cache.inner_calls, cache.texts_embedded) == (1, 3)


def test_a_cached_template_is_never_embedded_again() -> None:
    inner = Recording()
    cache = CachedEmbedder(inner, redis_url=None)
    first = cache.embed_keyed(["T1", "T2"], ["a", "b"])
    second = cache.embed_keyed(["T2", "T1", "T3"], ["b changed", "a", "c"])
    assert inner.batches == [["a", "b"], ["c"]]
    assert np.array_equal(second[0], first[1])
    assert np.array_equal(second[1], first[0])
    assert cache.hits_lru == 2
    assert cache.stats().hit_ratio == 2 / 5


def test_a_key_repeated_in_one_call_is_computed_once() -> None:
    inner = Recording()
    cache = CachedEmbedder(inner, redis_url=None)
    vectors = cache.embed_keyed(["T1", "T1", "T2"], ["a", "a", "b"])
    assert inner.batches == [["a", "b"]]
    assert np.array_equal(vectors[0], vectors[1])
    assert (cache.hits_lru, cache.stats().lookups) == (1, 3)


def test_the_lru_forgets_the_least_recently_used_key() -> None:
    inner = Recording()
    cache = CachedEmbedder(inner, redis_url=None, lru_size=2)
    cache.embed_keyed(["T1", "T2"], ["a", "b"])
    cache.embed_keyed(["T1"], ["a"])
    cache.embed_keyed(["T3"], ["c"])
    cache.embed_keyed(["T1", "T2"], ["a", "b"])
    assert inner.batches == [["a", "b"], ["c"], ["b"]]


def test_cached_vectors_equal_the_engines_vectors() -> None:
    cache = CachedEmbedder(HashEmbedder(dim=16), redis_url=None)
    assert np.array_equal(cache.embed_keyed(["T1"], ["disk full"]), HashEmbedder(dim=16).embed(["disk full"]))


def test_plain_embed_caches_by_text_and_satisfies_the_embedder_protocol() -> None:
    inner = Recording()
    cache = CachedEmbedder(inner, redis_url=None)
    cache.embed(["x", "y"])
    cache.embed(["y", "x"])
    assert inner.batches == [["x", "y"]]
    assert (cache.model_version, cache.dim) == ("hash-v1-d16", 16)


def test_an_empty_call_touches_nothing() -> None:
    inner = Recording()
    cache = CachedEmbedder(inner, redis_url=None)
    assert cache.embed_keyed([], []).shape == (0, 16)
    assert inner.batches == []
    assert cache.stats().lookups == 0


def test_cached_lookup_never_computes() -> None:
    inner = Recording()
    cache = CachedEmbedder(inner, redis_url=None)
    cache.embed_keyed(["T1"], ["a"])
    found = cache.cached(["T1", "T2"])
    assert list(found) == ["T1"]
    assert len(inner.batches) == 1


def test_engine_throughput_is_measured_over_embedded_texts() -> None:
    cache = CachedEmbedder(HashEmbedder(dim=16), redis_url=None)
    cache.embed_keyed(["T1", "T2"], ["a", "b"])
    stats = cache.stats()
    assert stats.texts_embedded == 2
    assert stats.inner_seconds > 0
    assert stats.embeddings_per_s > 0
