"""Sentry poller against Sentry's documented failure shapes, through httpx and the fake Sentry API.

A missing latest event, a 4xx on one issue and Sentry's own rate-limit headers
(tests/fakes/sentry.py traces each to https://docs.sentry.io/api/).
"""

from __future__ import annotations

import asyncio

from producers.config import PollersFile, SentryConfig
from producers.poll import Wiring, open_poller
from tests.fakes import decoded_dead_letters, decoded_events, memory_wiring
from tests.fakes.sentry import FakeSentry, make_issue, make_latest_event

ENV = {"SEISMO_SENTRY_TOKEN": "sntrys-test"}
LATEST = "/api/0/organizations/acme/issues/{}/events/latest/"


def config(url: str, **overrides: object) -> PollersFile:
    section = {"base_url": url, "organization": "acme", "projects": ["payments"], "releases": False,
               "performance": False, "page_size": 2, "max_attempts": 4, **overrides}
    return PollersFile(sentry=SentryConfig.model_validate(section))


async def cycles(cfg: PollersFile, wiring: Wiring, n: int = 1) -> None:
    async with open_poller("sentry", cfg, wiring) as poller:
        for _ in range(n):
            await poller.cycle()


def seed(fake: FakeSentry, n: int) -> None:
    for i in range(1, n + 1):
        seen = f"2024-05-01T11:{10 + i:02d}:00.000000Z"
        fake.issues.append(make_issue(str(i), "payments", seen))
        fake.latest[str(i)] = make_latest_event(f"{i:032x}", seen)


def test_an_issue_whose_latest_event_is_gone_is_published_from_its_list_fields_and_the_scan_goes_on() -> None:
    with FakeSentry() as fake:
        seed(fake, 3)
        del fake.latest["2"]  # deleted, or not stored yet: Sentry answers 404
        wiring, publisher, cursors, _, metrics = memory_wiring(ENV)
        asyncio.run(cycles(config(fake.url), wiring, 2))
    events = decoded_events(publisher)
    assert sorted(e.id for e in events) == [
        f"sentry:acme:issue:1:{1:032x}",
        "sentry:acme:issue:2:last-seen-2024-05-01T11:12:00.000000Z",
        f"sentry:acme:issue:3:{3:032x}",
    ]
    assert decoded_dead_letters(publisher) == []
    assert metrics.value("seismo_poller_object_errors_total", reason="gone") == 1
    assert cursors.load("sentry/issues:payments") == {
        "since": "2024-05-01T11:13:00Z", "scan_max": None, "page": None}


def test_a_latest_event_answering_400_holds_its_page_then_parks_the_issue_and_the_scan_goes_on() -> None:
    with FakeSentry() as fake:
        seed(fake, 3)
        fake.fail(LATEST.format(2), 400, times=10, body={"detail": "Invalid event id"})
        wiring, publisher, cursors, _, metrics = memory_wiring(ENV)

        async def run() -> None:
            async with open_poller("sentry", config(fake.url, object_attempts=2), wiring) as poller:
                await poller.cycle()
                assert cursors.load("sentry/issues:payments") is None, "the failing issue's page was held"
                await poller.cycle()

        asyncio.run(run())
    [letter] = decoded_dead_letters(publisher)
    assert letter.error_type == "object_parked"
    assert "issue 2 parked" in letter.reason and "Invalid event id" in letter.reason
    assert sorted(e.attributes["issue_id"] for e in decoded_events(publisher)) == ["1", "2", "3"]
    assert metrics.value("seismo_poller_parked_total", source="sentry") == 1
    assert cursors.load("sentry/issues:payments") == {
        "since": "2024-05-01T11:13:00Z", "scan_max": None, "page": None}


def test_an_exhausted_sentry_rate_limit_window_pauses_the_source_until_its_reset_without_a_429() -> None:
    with FakeSentry() as fake:
        seed(fake, 3)
        wiring, publisher, _, clock, metrics = memory_wiring(ENV)
        fake.now = clock.now
        fake.rate_limit = (2, 10)  # 2 requests per endpoint in windows of 10 s
        asyncio.run(cycles(config(fake.url), wiring))
    assert len(decoded_events(publisher)) == 3
    assert metrics.value("seismo_poller_retries_total") == 0, "a request was sent into a spent window"
    assert any(9.0 <= s <= 10.0 for s in clock.sleeps), clock.sleeps


def test_a_429_without_retry_after_waits_until_sentrys_reset_header() -> None:
    with FakeSentry() as fake:
        seed(fake, 1)
        wiring, publisher, _, clock, metrics = memory_wiring(ENV)
        reset = int(clock.now().timestamp()) + 17
        fake.fail("/api/0/projects/", 429, body={"detail": "You are attempting to use this endpoint too "
                                                 "frequently. Limit is 40 requests in 1 seconds"},
                  headers={"X-Sentry-Rate-Limit-Limit": "40", "X-Sentry-Rate-Limit-Remaining": "0",
                           "X-Sentry-Rate-Limit-Reset": str(reset)})
        asyncio.run(cycles(config(fake.url), wiring))
    assert 17.0 in clock.sleeps
    assert len(decoded_events(publisher)) == 1
    assert metrics.value("seismo_poller_retries_total", source="sentry") == 1
