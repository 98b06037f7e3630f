"""search_events on the real broker: a real gateway (all-MiniLM-L6-v2, Redis vector cache) reads
recent enriched events of two sources, answers over streamable HTTP, and a restarted gateway
rebuilds the same window from Kafka with the vectors from Redis."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest
from confluent_kafka import Producer
from mcp import Client

from mcp_gateway.auth.keys import KeyStore
from mcp_gateway.auth.roles import Role
from mcp_gateway.budget import untrusted
from mcp_gateway.client import gateway_client
from schemas.codec import codec_for
from schemas.models import Event
from seismo.local.redis import redis_answers
from seismo.topics import ensure_topics
from tests.kafka_utils import Env, delete_redis_keys, free_port, stop, wait_healthy

pytestmark = [pytest.mark.kafka, pytest.mark.redis]

T0 = datetime(2024, 6, 1, 8, 0, tzinfo=UTC)  # event time: replayed data is searchable too
LOOKBACK_S = 3600
key = ""  # the viewer key of the running gateway (set by `gateway`)


@pytest.fixture
def env(seismo_env: Env) -> Iterator[Env]:
    url = seismo_env.settings.redis
    if not redis_answers(url):
        pytest.fail(f"no Redis answers at {url}: run `seismo redis start` (or .ci/run)")
    seismo_env.extra.update({"SEISMO_EMBEDDER": "minilm", "SEISMO_SEARCH_LOOKBACK_S": str(LOOKBACK_S),
                             "SEISMO_GATEWAY_KEYS_FILE": str(seismo_env.state_dir / "keys.json")})
    yield seismo_env
    # the gateway cached the vectors of this run's (unique) template ids: remove them
    delete_redis_keys(url, f"seismo:{seismo_env.settings.namespace}:*")


def publish(env: Env) -> tuple[int, dict[str, str]]:
    """Enriched events of Kubernetes and Sentry; three of them arrived before the lookback.

    Returns how many events are recent and the template ids by name.
    """
    tid = {name: f"T{env.run}{name}" for name in ("db", "login", "oom", "card", "old", "tls")}
    templates = {
        "db": "connection refused by database host <IP> port <NUM>",
        "login": "user <*> logged in from <IP>",
        "oom": "Pod <POD> OOMKilled: container exceeded memory limit",
        "card": "payment card declined by issuer for order <NUM>",
        "old": "connection to database pool exhausted",
    }
    db = "connection refused by database host 10.0.0.{} port 5432"
    recent = [
        ("db", "payments", "kubernetes", "log", "error", db.format(7)),
        ("login", "auth", "kubernetes", "log", "info", "user alice logged in from 10.1.2.3"),
        ("db", "checkout", "sentry", "error", "error", db.format(7)),
        ("oom", "payments", "kubernetes", "event", "warning", "Pod payments-7f9c OOMKilled: container …"),
        ("card", "payments", "sentry", "error", "error", "payment card declined by issuer for order 991"),
        ("db", "payments", "kubernetes", "log", "error", db.format(8)),
        ("login", "auth", "kubernetes", "log", "info", "user bob logged in from 10.1.2.4"),
        ("db", "checkout", "sentry", "error", "error", db.format(9)),
    ]
    old = [("old", "payments", "kubernetes", "log", "error", "connection to database pool exhausted")] * 3
    producer = Producer({"bootstrap.servers": env.settings.bootstrap, "acks": "all", "log_level": 3})
    codec = codec_for("event")
    topic = env.topic("events.enriched")
    two_hours_ago = int((time.time() - 2 * LOOKBACK_S) * 1000)
    for n, (name, service, source, kind, severity, message) in enumerate(old + recent):
        event = Event.model_validate({
            "id": f"ev-{env.run}-{n:02d}", "source": source, "kind": kind, "severity": severity,
            "service": service, "timestamp": T0 + timedelta(minutes=n), "message": message,
            "template_id": tid[name], "template": templates[name],
        })
        value = codec.encode(event.to_avro())
        if n < len(old):
            producer.produce(topic, key=service.encode(), value=value, timestamp=two_hours_ago)
        else:
            producer.produce(topic, key=service.encode(), value=value)
    assert producer.flush(30) == 0
    return len(recent), tid


def publish_one(env: Env, template_id: str) -> None:
    """One more event (Sentry), published while a gateway runs."""
    event = Event.model_validate({
        "id": f"ev-{env.run}-new", "source": "sentry", "kind": "error", "severity": "error",
        "service": "edge", "timestamp": T0 + timedelta(hours=1), "template_id": template_id,
        "message": "TLS handshake failed: certificate expired for api.example.com",
        "template": "TLS handshake failed: certificate expired for <HOST>",
    })
    producer = Producer({"bootstrap.servers": env.settings.bootstrap, "acks": "all", "log_level": 3})
    value = codec_for("event").encode(event.to_avro())
    producer.produce(env.topic("events.enriched"), key=b"edge", value=value)
    assert producer.flush(30) == 0


async def search(client: Client, args: dict[str, Any]) -> dict[str, Any]:
    res = await client.call_tool("search_events", args)
    assert not res.is_error, res.content
    assert isinstance(res.structured_content, dict)
    return res.structured_content


def viewer_key(env: Env) -> str:
    return KeyStore(Path(env.extra["SEISMO_GATEWAY_KEYS_FILE"])).create("search", Role.VIEWER)[1]


async def session(url: str, expected_events: int, queries: list[dict[str, Any]],
                  then: Callable[[Client], Awaitable[None]] | None = None) -> list[dict[str, Any]]:
    """One MCP session: wait until the gateway has read the window, run ``queries``, then ``then``."""
    async with gateway_client(url, key) as client:
        with anyio.fail_after(60):
            while True:
                probe = await search(client, {"query": "anything"})
                if not probe["catching_up"] and probe["indexed_events"] >= expected_events:
                    break
                await anyio.sleep(0.2)
        answers = [await search(client, q) for q in queries]
        if then is not None:
            await then(client)
        return answers


@contextmanager
def gateway(env: Env) -> Iterator[tuple[str, Callable[[], Any]]]:
    """A real gateway over streamable HTTP: its MCP URL and a /healthz reader."""
    global key
    key = viewer_key(env)
    port = free_port()
    proc = env.spawn("gateway", "--port", str(port), log_name="gateway")
    try:
        wait_healthy(f"http://127.0.0.1:{port}/healthz", proc)
        yield f"http://127.0.0.1:{port}/mcp", lambda: httpx.get(
            f"http://127.0.0.1:{port}/healthz", timeout=5).json()
    except BaseException:
        print(env.log_tail("gateway"))
        raise
    finally:
        stop(proc)


def test_search_events_finds_recent_events_of_both_sources_and_survives_a_restart(env: Env) -> None:
    ensure_topics(env.settings)
    count, tid = publish(env)
    queries: list[dict[str, Any]] = [
        {"query": "cannot reach the database"},
        {"query": "cannot reach the database", "source": "sentry", "max_items": 2},
        {"query": "container ran out of memory", "max_items": 1},
    ]
    with gateway(env) as (url, health):
        db, db_sentry, oom = anyio.run(session, url, count, queries)
        first_health = health()

    assert db["indexed_events"] == count  # the three events that arrived two hours ago are out
    assert tid["old"] not in {h["template_id"] for h in db["hits"]}
    best = db["hits"][0]
    assert best["template_id"] == tid["db"]
    assert best["count"] == 4
    assert best["sources"] == ["kubernetes", "sentry"] and best["services"] == ["checkout", "payments"]
    assert best["latest"]["message"] == untrusted("connection refused by database host 10.0.0.9 port 5432")
    assert len(best["event_ids"]) == 4
    assert {h["template_id"] for h in db["hits"]} == {tid[n] for n in ("db", "login", "oom", "card")}
    assert [h["score"] for h in db["hits"]] == sorted((h["score"] for h in db["hits"]), reverse=True)
    assert [h["template_id"] for h in db_sentry["hits"]] == [tid["db"], tid["card"]]
    assert db_sentry["hits"][0]["count"] == 2 and db_sentry["hits"][0]["sources"] == ["sentry"]
    assert [h["template_id"] for h in oom["hits"]] == [tid["oom"]]
    assert first_health["search"]["caught_up"] is True and first_health["search"]["templates"] == 4
    assert first_health["search"]["templates_embedded"] == 4  # nobody had cached these templates

    async def follows_new_events(client: Client) -> None:
        await anyio.to_thread.run_sync(publish_one, env, tid["tls"])
        with anyio.fail_after(30):
            while True:
                res = await search(client, {"query": "TLS certificate expired", "max_items": 1})
                if res["hits"][0]["template_id"] == tid["tls"]:
                    assert res["indexed_events"] == count + 1
                    return
                await anyio.sleep(0.2)

    # A restarted gateway re-reads the recent part of the topic: the same answers, every template
    # vector from Redis; then it follows the topic.
    with gateway(env) as (url, health):
        again = anyio.run(session, url, count, queries, follows_new_events)
        assert again == [db, db_sentry, oom]
        assert health()["search"]["templates_embedded"] == 1  # the new template only
