"""The live tools' shared cache on the real Redis: replicas share answers, an outage is only a miss."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import anyio
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from mcp_gateway.live import RedisLiveCache, register_live_tools
from producers.config import PollersFile, SentryConfig
from seismo.local.redis import redis_answers
from seismo.settings import Settings
from tests.fakes.sentry import FakeSentry, make_issue
from tests.kafka_utils import delete_redis_keys, free_port

pytestmark = pytest.mark.redis
ENV = {"SEISMO_SENTRY_TOKEN": "sntrys-test"}


@pytest.fixture(scope="module")
def redis_url() -> str:
    url = Settings().redis
    if not redis_answers(url):
        pytest.fail(f"no Redis answers at {url}: run `seismo redis start` (or .ci/run)")
    return url


@pytest.fixture
def namespace(redis_url: str) -> Iterator[str]:
    name = f"t-live-{uuid.uuid4().hex[:8]}"
    yield name
    delete_redis_keys(redis_url, f"{name}:*")


@pytest.fixture
def fake() -> Iterator[FakeSentry]:
    with FakeSentry() as server:
        server.issues = [make_issue("101", "payments", "2024-05-01T11:59:00Z")]
        yield server


def replica(fake: FakeSentry, cache: RedisLiveCache, namespace: str) -> MCPServer:
    server = MCPServer("replica")
    cfg = PollersFile(sentry=SentryConfig(base_url=fake.url, organization="acme", projects=("payments",)))
    register_live_tools(server, cfg, cache=cache, namespace=namespace, environ=ENV)
    return server


def test_two_replicas_asking_the_same_question_cost_one_upstream_call(
        fake: FakeSentry, redis_url: str, namespace: str) -> None:
    async def scenario() -> None:
        first_cache, second_cache = RedisLiveCache(redis_url), RedisLiveCache(redis_url)
        try:
            answers = []
            for cache in (first_cache, second_cache):
                async with Client(replica(fake, cache, namespace)) as client:
                    answers.append(await client.call_tool("sentry_search_issues", {"query": "is:unresolved"}))
            assert answers[0].structured_content == answers[1].structured_content
            assert first_cache.errors == second_cache.errors == 0
        finally:
            await first_cache.close()
            await second_cache.close()

    anyio.run(scenario)
    assert len(fake.requests) == 1


def test_keys_live_under_the_app_namespace_with_a_short_ttl(
        fake: FakeSentry, redis_url: str, namespace: str) -> None:
    import redis

    async def scenario() -> None:
        cache = RedisLiveCache(redis_url)
        try:
            async with Client(replica(fake, cache, namespace)) as client:
                await client.call_tool("sentry_search_issues", {})
        finally:
            await cache.close()

    anyio.run(scenario)
    plain = redis.Redis.from_url(redis_url)
    try:
        keys = list(plain.scan_iter(match=f"{namespace}:live:*"))
        assert len(keys) == 1
        assert 0 < plain.pttl(keys[0]) <= 30_000
    finally:
        plain.close()


def test_an_unreachable_redis_degrades_to_no_cache_not_an_error(fake: FakeSentry, namespace: str) -> None:
    async def scenario() -> RedisLiveCache:
        cache = RedisLiveCache(f"redis://127.0.0.1:{free_port()}/0")
        try:
            async with Client(replica(fake, cache, namespace)) as client:
                for _ in range(2):
                    res = await client.call_tool("sentry_search_issues", {})
                    assert not res.is_error, res.content
        finally:
            await cache.close()
        return cache

    cache = anyio.run(scenario)
    assert cache.errors >= 2 and len(fake.requests) == 2
