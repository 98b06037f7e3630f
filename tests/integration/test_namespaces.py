"""Two deployments on one broker and one Redis, told apart only by SEISMO_NAMESPACE, never meet.

Topics, consumer groups, saved step states and cached embeddings all derive from
the namespace; this runs both side by side on the real services.  (The same with
whole workers is the runtime's test.)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import anyio
import pytest
from confluent_kafka.admin import AdminClient

from producers.publisher import KafkaPublisher
from seismo.local.redis import redis_answers
from seismo.settings import Settings
from seismo.topics import Topics, ensure_topics
from stream_processors.embed import CachedEmbedder, HashEmbedder
from stream_processors.runtime.state import RedisStateStore
from tests.kafka_utils import delete_redis_keys, read_topic


@pytest.fixture
def pair(kafka_bootstrap: str) -> Iterator[tuple[Settings, Settings]]:
    run = uuid.uuid4().hex[:8]
    a = Settings(namespace=f"ns-a-{run}", kafka_bootstrap=kafka_bootstrap, partitions=1)
    b = Settings(namespace=f"ns-b-{run}", kafka_bootstrap=kafka_bootstrap, partitions=1)
    if not redis_answers(a.redis):
        pytest.fail(f"no Redis answers at {a.redis_display}: run `seismo redis start` (or .ci/run)")
    yield a, b
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    existing = admin.list_topics(timeout=10).topics
    names = [t for s in (a, b) for t in vars(Topics.from_settings(s)).values() if t in existing]
    for future in admin.delete_topics(names, operation_timeout=30).values() if names else []:
        future.result(30)
    for s in (a, b):
        delete_redis_keys(s.redis, f"{s.redis_prefix}:*")


Pair = tuple[Settings, Settings]


def _topic_names(settings: Settings) -> set[str]:
    return set(vars(Topics.from_settings(settings)).values())


def test_two_namespaces_name_different_topics_groups_and_redis_keys(pair: Pair) -> None:
    a, b = pair
    assert not _topic_names(a) & _topic_names(b)
    assert a.group_id("score") != b.group_id("score")
    assert a.state_key != b.state_key and a.embed_cache_prefix != b.embed_cache_prefix


def test_events_published_in_one_namespace_are_not_read_in_the_other(pair: Pair) -> None:
    a, b = pair
    for s in (a, b):
        ensure_topics(s)
    publisher = KafkaPublisher(a.bootstrap)
    for s in (a, b):
        publisher.publish(Topics.from_settings(s).raw, b"payments", s.namespace.encode())
    publisher.flush()
    for s in (a, b):
        assert read_topic(Topics.from_settings(s).raw) == [(b"payments", s.namespace.encode())]


def test_a_step_state_saved_in_one_namespace_is_invisible_in_the_other(pair: Pair) -> None:
    a, b = pair

    async def run() -> None:
        store_a, store_b = RedisStateStore.from_settings(a), RedisStateStore.from_settings(b)
        await store_a.save("correlate:payments", {"owner": "a"})
        assert await store_b.load("correlate:payments") is None
        await store_b.save("correlate:payments", {"owner": "b"})
        assert await store_a.load_many(["correlate:payments"]) == {"correlate:payments": {"owner": "a"}}
        assert await store_b.load("correlate:payments") == {"owner": "b"}
        await store_a.close()
        await store_b.close()

    anyio.run(run)


def test_an_embedding_cached_in_one_namespace_is_not_served_in_the_other(pair: Pair) -> None:
    a, b = pair
    cache_a = CachedEmbedder(HashEmbedder(), a.redis, namespace=a.embed_cache_prefix)
    cache_b = CachedEmbedder(HashEmbedder(), b.redis, namespace=b.embed_cache_prefix)
    try:
        cache_a.embed_keyed(["T1"], ["user <*> logged in"])
        restarted_a = CachedEmbedder(HashEmbedder(), a.redis, namespace=a.embed_cache_prefix)
        assert set(restarted_a.cached(["T1"])) == {"T1"}  # from Redis: a fresh LRU
        restarted_a.close()
        assert cache_b.cached(["T1"]) == {}
    finally:
        cache_a.close()
        cache_b.close()
