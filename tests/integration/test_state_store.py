"""One contract suite for the correlator's state stores: in memory and in a real Redis."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import anyio
import pytest

from seismo.local.redis import redis_answers
from seismo.settings import Settings
from stream_processors.runtime.state import MemoryStateStore, RedisStateStore, StateStore


def _redis_url() -> str:
    url = Settings().redis
    if not redis_answers(url):
        pytest.fail(f"no Redis answers at {url}: run `seismo redis start` (or .ci/run)")
    return url


def memory() -> StateStore:
    return MemoryStateStore()


def real_redis() -> StateStore:
    return RedisStateStore(_redis_url(), namespace=f"test-{uuid.uuid4().hex}")


@pytest.fixture(params=[memory, real_redis], ids=["memory", "redis"])
def make_store(request: pytest.FixtureRequest) -> Callable[[], StateStore]:
    factory: Callable[[], StateStore] = request.param
    return factory



def test_a_key_never_saved_loads_as_none(make_store: Callable[[], StateStore]) -> None:
    async def run() -> None:
        store = make_store()
        assert await store.load("nobody") is None
        if isinstance(store, RedisStateStore):
            await store.close()

    anyio.run(run)


def test_saved_values_load_back_equal_and_the_latest_save_wins(make_store: Callable[[], StateStore]) -> None:
    async def run() -> None:
        store = make_store()
        await store.save("svc", {"a": 1, "nested": {"ids": ["x", "y"]}, "none": None})
        assert await store.load("svc") == {"a": 1, "nested": {"ids": ["x", "y"]}, "none": None}
        await store.save("svc", {"a": 2})
        assert await store.load("svc") == {"a": 2}
        assert await store.load("other") is None
        if isinstance(store, RedisStateStore):
            await store.close()

    anyio.run(run)


def test_redis_state_survives_a_new_client_in_the_same_namespace() -> None:
    url, ns = _redis_url(), f"test-{uuid.uuid4().hex}"

    async def run() -> None:
        first = RedisStateStore(url, namespace=ns)
        await first.save("svc", {"watermark_us": 42})
        await first.close()
        second = RedisStateStore(url, namespace=ns)
        assert await second.load("svc") == {"watermark_us": 42}
        other = RedisStateStore(url, namespace=ns + "-other")
        assert await other.load("svc") is None
        await second.close()
        await other.close()

    anyio.run(run)
