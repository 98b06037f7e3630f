"""The sentry_* live tools through the real MCP client, against the fake Sentry API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from mcp_gateway.live import LiveStats, register_live_tools
from producers.config import PollersFile, SentryConfig
from tests.fakes.sentry import FakeSentry, make_issue, make_latest_event, make_release

ENV = {"SEISMO_SENTRY_TOKEN": "sntrys-test"}


@pytest.fixture
def fake() -> Iterator[FakeSentry]:
    with FakeSentry() as server:
        server.issues = [
            make_issue("101", "payments", "2024-05-01T11:59:00Z"),
            make_issue("102", "payments", "2024-05-01T11:58:00Z", title="TimeoutError: db", level="warning"),
            make_issue("201", "checkout", "2024-05-01T11:57:00Z"),
        ]
        server.latest["101"] = make_latest_event("ev-9", "2024-05-01T11:59:00Z")
        server.issue_events["101"] = [
            {"id": f"ev-{i}", "eventID": f"ev-{i}", "dateCreated": f"2024-05-01T11:5{i}:00Z",
             "message": "KeyError: 'currency'", "tags": [{"key": "release", "value": "payments@2.4.1"}]}
            for i in (9, 8, 7)
        ]
        release = make_release("payments@2.4.1", "2024-05-01T10:00:00Z", ["payments"],
                               deployed="2024-05-01T10:05:00Z")
        release["projects"][0]["healthData"] = {
            "crashFreeSessions": 97.5, "crashFreeUsers": 98.9, "totalSessions": 4000, "sessionsCrashed": 100,
            "adoption": 62.0, "hasHealthData": True}
        server.releases = [release]
        server.discover["payments"] = [
            {"transaction": "/api/charge", "count()": 1200, "p50()": 120.0, "p95()": 870.5, "p99()": 1500.0,
             "failure_rate()": 0.04, "tpm()": 20.0},
            {"transaction": "/api/refund", "count()": 10, "p50()": 80.0, "p95()": 90.0, "p99()": 99.0,
             "failure_rate()": 0.0, "tpm()": 0.2},
        ]
        yield server


@pytest.fixture
def server(fake: FakeSentry) -> MCPServer:
    cfg = PollersFile(sentry=SentryConfig(base_url=fake.url, organization="acme", projects=("payments",)))
    server = MCPServer("test")
    names = register_live_tools(server, cfg, environ=ENV)
    assert all(n.startswith("sentry_") for n in names) and len(names) == 5
    return server


def call(server: MCPServer, name: str, args: dict[str, Any]) -> Any:
    async def go() -> Any:
        async with Client(server) as client:
            return await client.call_tool(name, args)

    return anyio.run(go)


def test_issue_search_sends_the_query_and_sort_and_fences_titles(server: MCPServer, fake: FakeSentry) -> None:
    res = call(server, "sentry_search_issues", {"query": "is:unresolved level:error", "sort": "freq"})
    assert not res.is_error, res.content
    issues = res.structured_content["items"]
    assert [i["id"] for i in issues] == ["101", "102"]
    assert issues[0]["title"].startswith("<untrusted-log-text>") and "KeyError" in issues[0]["title"]
    sent = fake.calls("/api/0/projects/acme/payments/issues/")[0]
    assert sent.param("query") == "is:unresolved level:error" and sent.param("sort") == "freq"


def test_issue_details_carry_the_latest_events_stack_trace_and_tags(server: MCPServer) -> None:
    res = call(server, "sentry_get_issue", {"issue_id": "101"})
    data = res.structured_content
    assert data["event_id"] == "ev-9" and data["release"] == "payments@2.4.1"
    assert data["tags"]["environment"] == "production"
    assert "KeyError: 'currency'" in data["exception"]
    assert data["frames"][0] == {"where": "payments/api/charge.py:88 charge()", "in_app": True}


def test_an_issue_of_an_unconfigured_project_is_refused(server: MCPServer) -> None:
    res = call(server, "sentry_get_issue", {"issue_id": "201"})
    assert res.is_error and "not configured" in res.content[0].text


def test_an_unknown_issue_is_a_not_found_error(server: MCPServer) -> None:
    res = call(server, "sentry_get_issue", {"issue_id": "999"})
    assert res.is_error and "not found" in res.content[0].text


def test_events_of_an_issue_come_newest_first_within_max_items(server: MCPServer) -> None:
    res = call(server, "sentry_issue_events", {"issue_id": "101", "max_items": 2})
    data = res.structured_content
    assert [e["event_id"] for e in data["items"]] == ["ev-9", "ev-8"]
    assert data["items"][0]["tags"] == {"release": "payments@2.4.1"}


def test_release_health_reports_crash_free_rates_per_configured_project(server: MCPServer) -> None:
    res = call(server, "sentry_release_health", {"version": "payments@2.4.1"})
    data = res.structured_content
    assert data["last_deploy"] == "production 2024-05-01T10:05:00Z"
    assert data["projects"] == [{"project": "payments", "crash_free_sessions": 97.5, "crash_free_users": 98.9,
                                 "total_sessions": 4000, "sessions_crashed": 100, "adoption": 62.0}]


def test_transaction_summary_picks_the_transaction_asked_for(server: MCPServer, fake: FakeSentry) -> None:
    res = call(server, "sentry_transaction_summary", {"transaction": "/api/charge", "period_minutes": 30})
    data = res.structured_content
    assert (data["count"], data["p95_ms"], data["failure_rate"]) == (1200, 870.5, 0.04)
    sent = fake.calls("/api/0/organizations/acme/events/")[0]
    assert sent.param("statsPeriod") == "30m"
    assert 'transaction:"/api/charge"' in (sent.param("query") or "")


@pytest.mark.parametrize(("tool", "args"), [
    ("sentry_get_issue", {"issue_id": "../../projects"}),
    ("sentry_release_health", {"version": "a/b"}),
    ("sentry_transaction_summary", {"transaction": 'x" OR project:*'}),
    ("sentry_search_issues", {"project": "secret-project"}),
])
def test_identifiers_that_could_escape_a_path_or_query_are_rejected(
        server: MCPServer, fake: FakeSentry, tool: str, args: dict[str, Any]) -> None:
    res = call(server, tool, args)
    assert res.is_error
    assert fake.requests == []


def test_sentrys_429_is_retryable_after_its_rate_limit_window(server: MCPServer, fake: FakeSentry) -> None:
    fake.rate_limit = (1, 60)
    assert not call(server, "sentry_search_issues", {}).is_error
    res = call(server, "sentry_search_issues", {"query": "is:unresolved level:error"})
    assert res.is_error and "429" in res.content[0].text and "retry after" in res.content[0].text


def test_a_5xx_is_retryable_and_a_retry_after_holds_the_source(server: MCPServer, fake: FakeSentry) -> None:
    fake.fail("/api/0/organizations/acme/issues/101/", 503, headers={"Retry-After": "120"})
    res = call(server, "sentry_get_issue", {"issue_id": "101"})
    assert res.is_error and "503" in res.content[0].text and "retry after 120 s" in res.content[0].text
    held = call(server, "sentry_issue_events", {"issue_id": "101"})
    assert held.is_error and "rate limit" in held.content[0].text
    assert len(fake.requests) == 1


def test_the_same_search_twice_costs_one_upstream_call(server: MCPServer, fake: FakeSentry) -> None:
    first = call(server, "sentry_search_issues", {"query": "is:unresolved"})
    second = call(server, "sentry_search_issues", {"query": "is:unresolved"})
    assert first.structured_content == second.structured_content
    assert len(fake.requests) == 1


def test_issue_search_without_a_project_covers_every_configured_project(fake: FakeSentry) -> None:
    cfg = PollersFile(sentry=SentryConfig(base_url=fake.url, organization="acme",
                                          projects=("payments", "checkout")))
    server = MCPServer("test")
    register_live_tools(server, cfg, environ=ENV)
    res = call(server, "sentry_search_issues", {})
    assert [i["id"] for i in res.structured_content["items"]] == ["101", "102", "201"]


def test_stats_count_the_upstream_calls_the_cache_saved(fake: FakeSentry) -> None:
    stats = LiveStats()
    cfg = PollersFile(sentry=SentryConfig(base_url=fake.url, organization="acme", projects=("payments",)))
    server = MCPServer("test")
    register_live_tools(server, cfg, environ=ENV, stats=stats)
    for _ in range(3):
        call(server, "sentry_get_issue", {"issue_id": "101"})
    assert stats.snapshot() == {"sentry": {"upstream_calls": 1, "cache_hits": 2}}
