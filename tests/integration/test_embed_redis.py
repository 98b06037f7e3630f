"""CachedEmbedder against the real Redis: vectors outlive the process, outages degrade to the LRU."""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Iterator

import numpy as np
import pytest
import redis

from seismo.local.redis import redis_answers
from seismo.settings import Settings
from stream_processors.embed import CachedEmbedder, HashEmbedder, NoveltyIndex
from tests.kafka_utils import delete_redis_keys

pytestmark = pytest.mark.redis


@pytest.fixture
def redis_url() -> str:
    url = Settings().redis
    if not redis_answers(url):
        pytest.fail(f"no Redis answers at {url}: run `seismo redis start` (or .ci/run)")
    return url


@pytest.fixture
def namespace(redis_url: str) -> Iterator[str]:
    name = f"seismo:test-embed:{uuid.uuid4().hex}"
    yield name
    delete_redis_keys(redis_url, f"{name}:*")


def unused_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


def test_a_new_cached_embedder_reads_vectors_from_redis_instead_of_recomputing(
    redis_url: str, namespace: str
) -> None:
    first = CachedEmbedder(HashEmbedder(), redis_url, namespace=namespace)
    before = first.embed_keyed(["T1", "T2"], ["disk full", "user logged in"])
    first.close()
    restarted = CachedEmbedder(HashEmbedder(), redis_url, namespace=namespace)
    after = restarted.embed_keyed(["T2", "T1", "T3"], ["user logged in", "disk full", "new one"])
    assert np.array_equal(after[:2], before[::-1])
    assert (restarted.hits_redis, restarted.inner_calls, restarted.texts_embedded) == (2, 1, 1)
    restarted.embed_keyed(["T1"], ["disk full"])
    assert restarted.hits_lru == 1
    restarted.close()


def test_vectors_are_stored_as_raw_float32_bytes_under_model_version_and_template_id(
    redis_url: str, namespace: str
) -> None:
    cache = CachedEmbedder(HashEmbedder(dim=16), redis_url, namespace=namespace)
    vector = cache.embed_keyed(["Tabc"], ["disk full"])[0]
    raw = redis.Redis.from_url(redis_url).get(f"{namespace}:hash-v1-d16:Tabc")
    assert isinstance(raw, bytes)
    assert np.array_equal(np.frombuffer(raw, dtype="<f4"), vector)
    cache.close()


def test_another_model_version_never_reads_foreign_vectors(redis_url: str, namespace: str) -> None:
    CachedEmbedder(HashEmbedder(dim=16), redis_url, namespace=namespace).embed_keyed(["T1"], ["a"])
    other = CachedEmbedder(HashEmbedder(dim=32), redis_url, namespace=namespace)
    other.embed_keyed(["T1"], ["a"])
    assert (other.hits_redis, other.inner_calls) == (0, 1)


def test_a_restart_rebuilds_the_novelty_index_from_redis_without_the_engine(
    redis_url: str, namespace: str
) -> None:
    triples = [("auth", "T1", "user logged in"), ("auth", "T2", "disk full"), ("db", "T3", "slow query")]
    first = CachedEmbedder(HashEmbedder(), redis_url, namespace=namespace)
    NoveltyIndex.rebuild_from(first, triples)
    restarted = CachedEmbedder(HashEmbedder(), redis_url, namespace=namespace)
    index = NoveltyIndex.rebuild_from(restarted, triples)
    assert restarted.inner_calls == 0
    assert index.templates("auth") == ("T1", "T2")


def test_with_redis_down_the_cache_keeps_working_from_the_lru_and_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    cache = CachedEmbedder(HashEmbedder(), unused_port_url(), retry_s=30.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="stream_processors.embed.cache"):
        vectors = cache.embed_keyed(["T1", "T2"], ["a", "b"])
        again = cache.embed_keyed(["T1", "T2"], ["a", "b"])
    assert np.array_equal(vectors, again)
    assert (cache.inner_calls, cache.hits_lru) == (1, 2)
    assert not cache.redis_up
    assert cache.redis_errors == 1
    assert "LRU only" in caplog.text
    now[0] = 31.0
    cache.embed_keyed(["T3"], ["c"])
    assert cache.redis_errors == 2


def test_with_redis_down_from_the_start_and_back_later_vectors_reach_redis(
    redis_url: str, namespace: str
) -> None:
    now = [0.0]
    cache = CachedEmbedder(HashEmbedder(), unused_port_url(), namespace=namespace, clock=lambda: now[0])
    cache.embed_keyed(["T1"], ["a"])
    cache._redis = redis.Redis.from_url(redis_url)  # the server "comes back" at the same address
    now[0] = 60.0
    cache.embed_keyed(["T2"], ["b"])
    assert cache.redis_up
    assert redis.Redis.from_url(redis_url).exists(f"{cache.prefix}T2") == 1
