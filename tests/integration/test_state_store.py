"""One contract suite for the correlator's state stores: in memory and in a real Redis."""

from __future__ import annotations

import logging
import os
import pickle
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
import redis

from seismo.local.redis import redis_answers
from seismo.settings import Settings
from stream_processors.exceptions import RecoverableError
from stream_processors.runtime.state import MemoryStateStore, RedisStateStore, StateStore, StateUnavailable


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


class _Payload:
    """Unpickling this creates ``marker``: proof that a stored blob ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.mkdir, (str(self.marker),)


def _hostile_values(marker: Path) -> dict[str, bytes]:
    return {
        "pickle": pickle.dumps(_Payload(marker)),
        "garbage": b"\x80\x04\xff not json \x00",
        "list": b"[1, 2, 3]",
        "deep": b"[" * 100_000,
    }


def _write_raw(store: StateStore, values: dict[str, bytes]) -> None:
    if isinstance(store, MemoryStateStore):
        store.data.update({k: v.decode("latin-1") for k, v in values.items()})
        return
    assert isinstance(store, RedisStateStore)
    client = redis.Redis.from_url(_redis_url())
    try:
        mapping: dict[Any, Any] = dict(values)  # redis-py types the mapping invariantly
        client.hset(store.hash_name, mapping=mapping)
    finally:
        client.close()


def test_a_pickle_or_garbage_in_the_store_loads_as_missing_with_an_error_and_runs_nothing(
    make_store: Callable[[], StateStore], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    marker = tmp_path / "ran"
    hostile = _hostile_values(marker)

    async def run() -> None:
        store = make_store()
        _write_raw(store, hostile)
        await store.save("good", {"a": 1})
        with caplog.at_level(logging.ERROR):
            for key in hostile:
                assert await store.load(key) is None
            assert await store.load_many([*hostile, "good"]) == {"good": {"a": 1}}
        if isinstance(store, RedisStateStore):
            client = redis.Redis.from_url(_redis_url())
            client.delete(store.hash_name)
            client.close()
        await store.close()

    anyio.run(run)
    assert not marker.exists()
    for key in hostile:
        assert f"saved state {key} " in caplog.text


def _counting(after: int) -> tuple[Callable[[], bool], list[int]]:
    """A ``stopping`` callable that turns true at its ``after``-th call."""
    calls = [0]

    def stopping() -> bool:
        calls[0] += 1
        return calls[0] >= after

    return stopping, calls


DOWN = "redis://127.0.0.1:1/0"  # nothing listens on port 1: every attempt is refused at once


def test_a_store_waiting_for_a_redis_that_is_down_stops_when_the_worker_is_stopping() -> None:
    stopping, calls = _counting(after=5)

    async def run() -> None:
        store = RedisStateStore(DOWN, namespace="down", stopping=stopping, timeout_s=1.0)
        with anyio.fail_after(10), pytest.raises(StateUnavailable, match="stopping"):
            await store.save_many({"svc": {"a": 1}})
        await store.close()

    anyio.run(run)
    assert calls[0] >= 5  # asked between attempts until it said stop


def test_a_store_gives_up_after_its_deadline_with_a_recoverable_error() -> None:
    async def run() -> None:
        store = RedisStateStore(DOWN, namespace="down", give_up_after_s=0.5, timeout_s=1.0)
        with anyio.fail_after(10), pytest.raises(RecoverableError, match="failed for"):
            await store.load("svc")
        await store.close()

    anyio.run(run)


def test_stop_wakes_a_store_that_waits_for_redis() -> None:
    async def run() -> None:
        store = RedisStateStore(DOWN, namespace="down", max_backoff=30.0, timeout_s=1.0)
        failed = anyio.Event()

        class Woken(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                failed.set()  # the first "retrying in" warning: the store is waiting

        handler = Woken(logging.WARNING)
        logging.getLogger("stream_processors.runtime.state").addHandler(handler)
        try:
            async with anyio.create_task_group() as tg:
                async def stop_when_waiting() -> None:
                    await failed.wait()
                    store.stop()

                tg.start_soon(stop_when_waiting)
                with anyio.fail_after(10), pytest.raises(StateUnavailable):
                    await store.load("svc")
        finally:
            logging.getLogger("stream_processors.runtime.state").removeHandler(handler)
        await store.close()

    anyio.run(run)
