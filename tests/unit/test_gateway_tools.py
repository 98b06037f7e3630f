"""The MCP tools through an in-memory client session (the HTTP path is in tests/integration)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio
import pytest
from mcp import Client

from mcp_gateway.server import GatewayContext, build_server
from mcp_gateway.store import IncidentStore, InvalidCursor
from schemas.models import Incident, IncidentStatus

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def incident(i: int, service: str, status: str = "open") -> Incident:
    ts = T0 + timedelta(minutes=i)
    return Incident(
        id=f"inc-{i:03d}",
        revision=1,
        status=IncidentStatus(status),
        title=f"t{i}",
        severity="error",
        opened_at=ts,
        updated_at=ts,
        services=[service],
        sources=["sentry"],
        root_cause_candidates=[{"service": service, "score": 1.0, "reason": "first"}],
        evidence=[
            {
                "event_id": f"e{i}",
                "source": "sentry",
                "kind": "error",
                "timestamp": ts,
                "service": service,
                "severity": "error",
            }
        ],
        event_count=1,
    )


@pytest.fixture
def store() -> IncidentStore:
    s = IncidentStore()
    for i in range(25):
        s.upsert(incident(i, "api" if i % 2 else "db", "resolved" if i < 5 else "open"))
    s.caught_up.set()
    return s


def test_store_pages_cover_every_match_exactly_once_newest_first(store: IncidentStore) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        page = store.query(limit=7, cursor=cursor)
        seen += [i.id for i in page.incidents]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [f"inc-{i:03d}" for i in reversed(range(25))]


def test_store_filters_by_status_service_and_since(store: IncidentStore) -> None:
    page = store.query(status=IncidentStatus.RESOLVED, service="api")
    assert [i.id for i in page.incidents] == ["inc-003", "inc-001"]
    assert store.query(since=T0 + timedelta(minutes=20)).total == 5


def test_store_rejects_a_forged_cursor(store: IncidentStore) -> None:
    with pytest.raises(InvalidCursor):
        store.query(cursor="!!!")


def test_list_and_get_tools_return_structured_incidents(store: IncidentStore) -> None:
    server = build_server(GatewayContext(store))

    async def scenario() -> None:
        async with Client(server) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert {"list_incidents", "get_incident"} <= tools
            args = {"status": "open", "service": "db", "max_items": 3}
            res = await client.call_tool("list_incidents", args)
            assert not res.is_error
            data = res.structured_content
            assert isinstance(data, dict)
            assert [i["id"] for i in data["incidents"]] == ["inc-024", "inc-022", "inc-020"]
            assert data["total"] == 10 and data["next_cursor"]
            nxt = await client.call_tool(
                "list_incidents",
                {"status": "open", "service": "db", "max_items": 3, "cursor": data["next_cursor"]},
            )
            assert isinstance(nxt.structured_content, dict)
            assert nxt.structured_content["incidents"][0]["id"] == "inc-018"
            one = await client.call_tool("get_incident", {"id": "inc-007"})
            assert isinstance(one.structured_content, dict)
            got = one.structured_content
            assert got["id"] == "inc-007" and got["evidence"][0]["event_id"] == "e7"
            assert set(got) >= {
                "id",
                "status",
                "title",
                "severity",
                "opened_at",
                "updated_at",
                "services",
                "sources",
                "root_cause_candidates",
                "evidence",
            }

    anyio.run(scenario)


def test_unknown_ids_and_bad_cursors_are_tool_errors_not_crashes(store: IncidentStore) -> None:
    server = build_server(GatewayContext(store))

    async def scenario() -> None:
        async with Client(server) as client:
            missing = await client.call_tool("get_incident", {"id": "nope"})
            assert missing.is_error and "no incident with id 'nope'" in str(missing.content)
            bad = await client.call_tool("list_incidents", {"cursor": "garbage"})
            assert bad.is_error and "invalid cursor" in str(bad.content)

    anyio.run(scenario)
