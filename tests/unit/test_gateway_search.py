"""search_events: the recent-events window (ranking, grouping, filters, bounds, vectors from the
cache) and the MCP tool through an in-memory client. Kafka and restarts: tests/integration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from mcp import Client

from mcp_gateway.follower import start_offset
from mcp_gateway.recent import (
    DISABLED,
    MAX_MESSAGE_CHARS,
    EmptyQuery,
    RecentEvents,
    SearchResults,
)
from mcp_gateway.server import GatewayContext, build_server
from mcp_gateway.store import IncidentStore
from schemas.models import Event
from stream_processors.embed import CachedEmbedder, HashEmbedder

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
NOW = 1_800_000_000.0  # the window's clock (arrival times), epoch seconds
HOUR = 3600.0

TEMPLATES = {
    "Tdb": "connection refused by database host <IP> port <NUM>",
    "Tlogin": "user <*> logged in from <IP>",
    "Tdisk": "disk quota exceeded on volume <PATH>",
    "Tcard": "payment card declined by issuer for order <NUM>",
}


def event(
    n: int, template_id: str | None, service: str, source: str = "kubernetes", minutes: float = 0,
    message: str | None = None, kind: str = "log", severity: str = "info",
) -> Event:
    return Event.model_validate({
        "id": f"ev-{n:03d}", "source": source, "kind": kind, "severity": severity, "service": service,
        "timestamp": T0 + timedelta(minutes=minutes),
        "message": message or f"{TEMPLATES[template_id or 'Tdb']} #{n}",
        "template_id": template_id, "template": TEMPLATES[template_id] if template_id else None,
    })


def scenario() -> list[Event]:
    """Five database errors (payments on Kubernetes, checkout on Sentry), logins, one disk alert."""
    return [
        event(1, "Tdb", "payments", minutes=1, severity="error"),
        event(2, "Tlogin", "auth", minutes=2),
        event(3, "Tdb", "payments", minutes=3, severity="error"),
        event(4, "Tdb", "checkout", "sentry", minutes=4, kind="error", severity="error"),
        event(5, "Tlogin", "auth", minutes=5),
        event(6, "Tdisk", "storage", "cloudwatch", minutes=6, kind="alert", severity="critical"),
        event(7, "Tdb", "payments", minutes=7, severity="error"),
        event(8, "Tdb", "checkout", "sentry", minutes=8, kind="error", severity="error"),
    ]


def window(max_events: int = 1000, lookback_s: float = 6 * HOUR, cache: CachedEmbedder | None = None,
           events: list[Event] | None = None, caught_up: bool = True) -> RecentEvents:
    recent = RecentEvents(
        cache or CachedEmbedder(HashEmbedder(), redis_url=None), max_events, lookback_s, clock=lambda: NOW
    )
    recent.add([(e, NOW - 60 + i) for i, e in enumerate(scenario() if events is None else events)])
    if caught_up:
        recent.caught_up.set()
    return recent


def test_the_closest_template_ranks_first_with_its_events_grouped_into_one_hit() -> None:
    res = window().search("database connection refused")
    best = res.hits[0]
    assert best.template_id == "Tdb" and best.template == TEMPLATES["Tdb"]
    assert best.count == 5
    assert (best.services, best.sources) == (["checkout", "payments"], ["kubernetes", "sentry"])
    assert best.event_ids == ["ev-008", "ev-007", "ev-004", "ev-003", "ev-001"]
    assert best.latest.id == "ev-008" and best.latest.source == "sentry" and best.latest.kind == "error"
    assert (best.first_seen, best.last_seen) == (T0 + timedelta(minutes=1), T0 + timedelta(minutes=8))
    assert [h.template_id for h in res.hits].count("Tdb") == 1
    assert {h.template_id for h in res.hits} == {"Tdb", "Tlogin", "Tdisk"}
    assert [h.score for h in res.hits] == sorted((h.score for h in res.hits), reverse=True)
    assert best.score > res.hits[1].score
    assert (res.indexed_events, res.catching_up, res.query) == (8, False, "database connection refused")
    assert res.window_start == datetime.fromtimestamp(NOW - 60, UTC)


def test_a_different_query_ranks_a_different_template_first() -> None:
    assert window().search("disk quota exceeded").hits[0].template_id == "Tdisk"
    assert window().search("user logged in").hits[0].template_id == "Tlogin"


def test_only_the_newest_event_ids_of_a_template_are_listed_but_all_are_counted() -> None:
    events = [event(i, "Tlogin", "auth", minutes=i) for i in range(12)]
    hit = window(events=events).search("login").hits[0]
    assert hit.count == 12
    assert hit.event_ids == ["ev-011", "ev-010", "ev-009", "ev-008", "ev-007"]


def test_filters_keep_only_matching_events_and_drop_templates_without_any() -> None:
    recent = window()
    by_service = recent.search("database connection refused", service="checkout")
    assert [h.template_id for h in by_service.hits] == ["Tdb"]
    assert by_service.hits[0].count == 2 and by_service.hits[0].services == ["checkout"]
    by_source = recent.search("database connection refused", source="cloudwatch")
    assert [h.template_id for h in by_source.hits] == ["Tdisk"]
    later = recent.search("database connection refused", since=T0 + timedelta(minutes=5))
    assert {h.template_id: h.count for h in later.hits} == {"Tdb": 2, "Tlogin": 1, "Tdisk": 1}
    assert later.hits[0].first_seen == T0 + timedelta(minutes=7)
    assert recent.search("anything", service="nobody").hits == []
    assert len(recent.search("database", limit=1).hits) == 1


def test_a_blank_query_is_refused() -> None:
    with pytest.raises(EmptyQuery, match="query is empty"):
        window().search("  \n")


def test_the_answer_does_not_depend_on_the_order_events_arrived_in() -> None:
    events = [*scenario(), event(9, "Tcard", "payments", "sentry", minutes=9)]
    first = window(events=events).search("payment failed", limit=3)
    second = window(events=list(reversed(events))).search("payment failed", limit=3)
    assert [h.template_id for h in first.hits] == [h.template_id for h in second.hits]
    assert [h.model_dump() for h in first.hits] == [h.model_dump() for h in second.hits]


def test_the_oldest_events_are_evicted_beyond_max_events_and_their_templates_go_with_them() -> None:
    recent = window(max_events=3)
    res = recent.search("database connection refused")
    assert res.indexed_events == 3 == len(recent)
    # ev-006 (disk), ev-007 and ev-008 (database) are the three newest arrivals
    assert {h.template_id: h.count for h in res.hits} == {"Tdb": 2, "Tdisk": 1}
    assert recent.stats()["templates"] == 2
    recent.add([(event(9, "Tlogin", "auth", minutes=9), NOW)])
    assert {h.template_id for h in recent.search("disk").hits} == {"Tdb", "Tlogin"}


def test_events_older_than_the_lookback_expire() -> None:
    recent = RecentEvents(CachedEmbedder(HashEmbedder(), None), lookback_s=HOUR, clock=lambda: NOW)
    recent.add([
        (event(1, "Tdisk", "storage", minutes=1), NOW - 2 * HOUR),
        (event(2, "Tdb", "payments", minutes=2), NOW - 0.5 * HOUR),
    ])
    assert recent.expire() == 1
    res = recent.search("disk quota")
    assert [h.template_id for h in res.hits] == ["Tdb"] and res.indexed_events == 1
    assert res.window_start == datetime.fromtimestamp(NOW - 0.5 * HOUR, UTC)
    assert recent.expire(now=NOW + HOUR) == 1 and len(recent) == 0
    assert recent.search("disk quota").window_start is None


def test_vectors_come_from_the_cache_so_only_never_cached_templates_reach_the_engine() -> None:
    engine = HashEmbedder()
    cache = CachedEmbedder(engine, redis_url=None)
    cache.embed_keyed(["Tdb", "Tlogin"], [TEMPLATES["Tdb"], TEMPLATES["Tlogin"]])  # as the worker did
    before = cache.texts_embedded
    recent = window(cache=cache)
    assert cache.texts_embedded - before == 1  # Tdisk only, once for its one event
    recent.add([(event(20 + i, "Tdb", "payments", minutes=20 + i), NOW) for i in range(50)])
    assert cache.texts_embedded - before == 1
    assert recent.stats()["templates"] == 3 and len(recent) == 58


def test_an_event_without_a_template_is_searched_by_its_message() -> None:
    loose = event(30, None, "batch", message="nightly backup finished without errors")
    hit = window(events=[*scenario(), loose]).search("backup finished").hits[0]
    assert hit.template_id is None and hit.template == loose.message and hit.latest.id == "ev-030"


def test_long_messages_are_cut() -> None:
    long = event(40, "Tdb", "payments", message="x" * 5000)
    hit = window(events=[long]).search("x").hits[0]
    assert len(hit.latest.message) == MAX_MESSAGE_CHARS and hit.latest.message.endswith("…")


def test_a_redelivered_event_is_indexed_once() -> None:
    recent = window()
    assert recent.add([(e, NOW) for e in scenario()[:3]]) == 0
    assert len(recent) == 8


@pytest.mark.parametrize(
    ("low", "high", "by_time", "max_events", "expected"),
    [
        (0, 100, 40, 1000, 40),  # lookback starts inside the partition
        (0, 100, -1, 1000, 100),  # nothing that recent: start at the end
        (0, 100, 10, 30, 70),  # more recent events than max_events: the newest only
        (50, 100, 10, 1000, 50),  # retention deleted the start
        (0, 0, -1, 1000, 0),  # empty partition
    ],
)
def test_each_partition_is_read_from_the_later_of_lookback_size_and_beginning(
    low: int, high: int, by_time: int, max_events: int, expected: int
) -> None:
    assert start_offset(low, high, by_time, max_events) == expected


def ready_store() -> IncidentStore:
    store = IncidentStore()
    store.caught_up.set()
    return store


def call(ctx: GatewayContext, *calls: tuple[str, dict[str, Any]]) -> list[Any]:
    async def run() -> list[Any]:
        async with Client(build_server(ctx)) as client:
            return [await client.call_tool(name, args) for name, args in calls]

    return anyio.run(run)


def test_the_tool_returns_structured_hits_best_first() -> None:
    ctx = GatewayContext(ready_store(), window())

    async def run() -> None:
        async with Client(build_server(ctx)) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert "search_events" in tools
            description = " ".join((tools["search_events"].description or "").split())
            assert "by meaning" in description and "Events are grouped by template" in description
            res = await client.call_tool(
                "search_events", {"query": "database connection refused", "source": "sentry", "max_items": 5}
            )
            assert not res.is_error, res.content
            data = res.structured_content
            assert isinstance(data, dict)
            parsed = SearchResults.model_validate(data)
            assert [h.template_id for h in parsed.hits] == ["Tdb"]
            assert parsed.hits[0].event_ids == ["ev-008", "ev-004"]
            assert set(data["hits"][0]["latest"]) == {
                "id", "service", "source", "kind", "severity", "timestamp", "message"
            }
            assert data["hits"][0]["latest"]["message"].startswith("<untrusted-log-text>")
            assert data["catching_up"] is False

    anyio.run(run)


def test_the_tool_says_when_the_window_is_still_loading() -> None:
    recent = window(caught_up=False)
    (res,) = call(GatewayContext(ready_store(), recent), ("search_events", {"query": "disk"}))
    assert not res.is_error and res.structured_content["catching_up"] is True
    recent.caught_up.set()
    (res,) = call(GatewayContext(ready_store(), recent), ("search_events", {"query": "disk"}))
    assert res.structured_content["catching_up"] is False


def test_bad_arguments_are_tool_errors_with_a_clear_message() -> None:
    empty, naive, source, limit = call(
        GatewayContext(ready_store(), window()),
        ("search_events", {"query": "   "}),
        ("search_events", {"query": "disk", "since": "2024-05-01T00:00:00"}),
        ("search_events", {"query": "disk", "source": "twitter"}),
        ("search_events", {"query": "disk", "max_items": 0}),
    )
    assert empty.is_error and "query is empty" in str(empty.content)
    assert naive.is_error and "UTC offset" in str(naive.content)
    assert source.is_error and "sentry" in str(source.content)
    assert limit.is_error


def test_with_the_embedder_off_the_tool_explains_how_to_enable_search() -> None:
    (res,) = call(GatewayContext(ready_store()), ("search_events", {"query": "disk"}))
    assert res.is_error and str(res.content).count("SEISMO_EMBEDDER=off") == 1
    assert DISABLED in str(res.content)
