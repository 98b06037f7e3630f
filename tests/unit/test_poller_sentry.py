"""Sentry poller against the fake Sentry API: mapping, pagination, faults, restart."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from producers.config import PollersFile, SentryConfig
from producers.mapping import MappingRules, ServiceMapper
from producers.poll import Wiring, open_poller
from producers.sources import AccessDenied
from producers.sources.sentry import issue_event, next_cursor, release_events
from schemas.models import Entity, Event, EventKind, Metric, Severity, Source
from tests.fakes import decoded_dead_letters, decoded_events, memory_wiring
from tests.fakes.sentry import FakeSentry, make_issue, make_latest_event, make_release

ENV = {"SEISMO_SENTRY_TOKEN": "sntrys-test"}


def config(url: str, **overrides: object) -> PollersFile:
    section = {
        "base_url": url,
        "organization": "acme",
        "projects": ["payments"],
        "issues": True,
        "releases": False,
        "performance": False,
        "page_size": 2,
        "max_attempts": 4,
        **overrides,
    }
    return PollersFile(
        sentry=SentryConfig.model_validate(section),
        mapping=MappingRules(
            sentry_projects={"payments": "payments-api"}, aliases={"payments-api": "payments"}
        ),
    )


async def cycle(cfg: PollersFile, wiring: Wiring, pages: int | None = None) -> None:
    async with open_poller("sentry", cfg, wiring) as poller:
        if pages is None:
            await poller.cycle()
        else:
            for _ in range(pages):
                await poller.poll_once(poller.streams[0])


def seed(fake: FakeSentry, n: int) -> None:
    for i in range(1, n + 1):
        seen = f"2024-05-01T11:{10 + i:02d}:00.000000Z"
        fake.issues.append(make_issue(str(i), "payments", seen))
        fake.latest[str(i)] = make_latest_event(f"{i:032x}", seen)


def test_an_issue_and_its_latest_event_become_the_exact_error_event() -> None:
    issue = make_issue("1", "payments", "2024-05-01T11:30:00.000000Z")
    latest = make_latest_event("9fac2ceed9344f2bbfdd1fdacb0ed9b1", "2024-05-01T11:29:58.000000Z")
    event = issue_event("acme", issue, latest, ServiceMapper())
    assert event == Event(
        id="sentry:acme:issue:1:9fac2ceed9344f2bbfdd1fdacb0ed9b1",
        source=Source.SENTRY,
        kind=EventKind.ERROR,
        timestamp=datetime(2024, 5, 1, 11, 29, 58, tzinfo=UTC),
        service="payments",
        entity=Entity(project="payments", release="payments@2.4.1"),
        severity=Severity.ERROR,
        message="KeyError: 'currency' in payments/api/charge.py:88 charge()",
        attributes={
            "issue_id": "1",
            "short_id": "PAYMENTS-1",
            "culprit": "payments.api.charge in charge",
            "count": "12",
            "user_count": "3",
            "status": "unresolved",
            "permalink": "https://sentry.example.com/organizations/acme/issues/1/",
            "event_id": "9fac2ceed9344f2bbfdd1fdacb0ed9b1",
            "exception_type": "KeyError",
            "exception_value": "'currency'",
            "environment": "production",
            "frames": "payments/api/charge.py:88 charge() | payments/api/views.py:41 post()",
        },
    )


def test_a_deployed_release_becomes_one_deploy_event_per_configured_project() -> None:
    release = make_release(
        "payments@2.4.1", "2024-05-01T11:00:00Z", ["payments", "web"], deployed="2024-05-01T11:05:00Z"
    )
    [event] = release_events("acme", release, ("payments",), ServiceMapper())
    assert event == Event(
        id="sentry:acme:release:payments@2.4.1:payments",
        source=Source.SENTRY,
        kind=EventKind.DEPLOY,
        timestamp=datetime(2024, 5, 1, 11, 5, tzinfo=UTC),
        service="payments",
        entity=Entity(project="payments", release="payments@2.4.1"),
        severity=Severity.INFO,
        message="Deployed payments@2.4.1 to production",
        attributes={
            "version": "payments@2.4.1",
            "environment": "production",
            "ref": "6ba09a7c53235ee8a8fa5ee4c1ca8ca886e7fdbb",
            "new_groups": "1",
        },
    )


def test_the_next_cursor_is_read_from_sentrys_link_header() -> None:
    link = (
        '<https://s/api/0/x/?cursor=0:0:1>; rel="previous"; results="false"; cursor="0:0:1", '
        '<https://s/api/0/x/?cursor=0:100:0>; rel="next"; results="true"; cursor="0:100:0"'
    )
    assert next_cursor(link) == "0:100:0"
    assert next_cursor(link.replace('results="true"', 'results="false"')) is None
    assert next_cursor(None) is None


def test_issues_are_paged_through_the_link_header_with_the_token_and_mapped_service() -> None:
    with FakeSentry() as fake:
        seed(fake, 5)
        wiring, publisher, cursors, _, _ = memory_wiring(ENV)
        asyncio.run(cycle(config(fake.url), wiring))
        assert (
            fake.calls("/api/0/projects/acme/payments/issues/")[0].headers["authorization"]
            == "Bearer sntrys-test"
        )
    events = decoded_events(publisher)
    assert sorted(e.attributes["issue_id"] for e in events) == ["1", "2", "3", "4", "5"]
    assert {e.service for e in events} == {"payments"}
    assert cursors.load("sentry/issues:payments") == {
        "since": "2024-05-01T11:15:00Z",
        "scan_max": None,
        "page": None,
    }
    assert len(fake.calls("/api/0/projects/")) == 3


def test_a_429_is_honoured_by_waiting_its_retry_after_before_asking_again() -> None:
    with FakeSentry() as fake:
        seed(fake, 1)
        fake.fail("/api/0/projects/", 429, headers={"Retry-After": "7"})
        wiring, publisher, _, clock, metrics = memory_wiring(ENV)
        asyncio.run(cycle(config(fake.url), wiring))
    assert 7.0 in clock.sleeps
    assert len(decoded_events(publisher)) == 1
    assert metrics.value("seismo_poller_retries_total", source="sentry") == 1


def test_5xx_responses_are_retried_with_growing_jittered_backoff_on_the_fake_clock() -> None:
    with FakeSentry() as fake:
        seed(fake, 1)
        fake.fail("/api/0/organizations/acme/issues/1/events/latest/", 503, times=3)
        wiring, publisher, _, clock, _ = memory_wiring(ENV)
        asyncio.run(cycle(config(fake.url, backoff_base_s=1.0), wiring))
    waits = [s for s in clock.sleeps if s > 0.5]
    assert len(waits) == 3
    for attempt, wait in enumerate(waits):
        assert 2**attempt / 2 <= wait <= 2**attempt
    assert len(decoded_events(publisher)) == 1


def test_a_malformed_issues_page_is_dead_lettered_and_read_again_next_cycle() -> None:
    with FakeSentry() as fake:
        seed(fake, 1)
        fake.malformed("/api/0/projects/")
        wiring, publisher, cursors, _, _ = memory_wiring(ENV)
        asyncio.run(cycle(config(fake.url), wiring))
        assert cursors.load("sentry/issues:payments") is None
        asyncio.run(cycle(config(fake.url), wiring))
    [letter] = decoded_dead_letters(publisher)
    assert letter.error_type == "invalid_json"
    assert letter.payload == b'{"truncated": [1, 2'
    assert len(decoded_events(publisher)) == 1


def test_stopping_mid_scan_and_restarting_loses_and_duplicates_nothing() -> None:
    with FakeSentry() as fake:
        seed(fake, 5)
        wiring, publisher, cursors, _, _ = memory_wiring(ENV)
        asyncio.run(cycle(config(fake.url), wiring, pages=1))
        assert cursors.load("sentry/issues:payments") == {
            "since": "2024-05-01T11:00:00Z",
            "scan_max": "2024-05-01T11:15:00Z",
            "page": "0:2:0",
        }
        asyncio.run(cycle(config(fake.url), wiring))
    ids = [e.id for e in decoded_events(publisher)]
    assert len(ids) == len(set(ids)) == 5


def test_transaction_performance_becomes_p95_and_failure_rate_metrics_for_whole_windows() -> None:
    with FakeSentry() as fake:
        fake.discover["payments"] = [
            {"transaction": "/api/charge", "p95()": 812.5, "failure_rate()": 0.12, "count()": 340}
        ]
        wiring, publisher, cursors, _, _ = memory_wiring(ENV)
        asyncio.run(cycle(config(fake.url, issues=False, performance=True), wiring))
        [call] = fake.calls("/api/0/organizations/acme/events/")
    assert call.query["field"] == ["transaction", "p95()", "failure_rate()", "count()"]
    assert (call.query["start"], call.query["end"]) == (["2024-05-01T11:55:00Z"], ["2024-05-01T12:00:00Z"])
    assert [(e.metric, e.timestamp) for e in decoded_events(publisher)] == [
        (
            Metric(name="transaction.duration.p95", value=812.5, unit="ms"),
            datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        ),
        (
            Metric(name="transaction.failure_rate", value=0.12, unit="ratio"),
            datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        ),
    ]
    assert cursors.load("sentry/performance:payments") == {"end": "2024-05-01T12:00:00Z"}


def test_releases_newer_than_the_cursor_are_published_once() -> None:
    with FakeSentry() as fake:
        fake.releases = [
            make_release(f"payments@2.4.{i}", f"2024-05-01T1{i}:00:00Z", ["payments"]) for i in range(3)
        ]
        wiring, publisher, cursors, _, _ = memory_wiring(ENV)
        cfg = config(fake.url, issues=False, releases=True)
        asyncio.run(cycle(cfg, wiring))
        asyncio.run(cycle(cfg, wiring))
    assert [e.entity.release for e in decoded_events(publisher)] == [
        "payments@2.4.2",
        "payments@2.4.1",
        "payments@2.4.0",
    ]
    assert cursors.load("sentry/releases")["since"] == "2024-05-01T12:00:00Z"  # type: ignore[index]


def test_a_rejected_token_stops_the_poller_with_access_denied() -> None:
    with FakeSentry() as fake:
        wiring, _, _, _, _ = memory_wiring({"SEISMO_SENTRY_TOKEN": "wrong"})
        with pytest.raises(AccessDenied, match="401"):
            asyncio.run(cycle(config(fake.url), wiring))
