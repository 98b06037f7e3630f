"""Grafana query streams against ``/api/ds/query``'s real failure shapes, through httpx and the fake.

Per-query errors (HTTP 400 or 207 with ``results.A.error``), datasource 403/404 and Loki's
``maxLines`` cut (tests/fakes/grafana.py traces each shape to Grafana's and Loki's sources).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from producers.config import GrafanaConfig, GrafanaQuery, PollersFile
from producers.poll import open_poller
from tests.fakes import decoded_dead_letters, decoded_events, memory_wiring
from tests.fakes.grafana import FakeGrafana, prometheus_frame

ENV = {"SEISMO_GRAFANA_TOKEN": "glsa_test"}
NOW_MS = int(datetime(2024, 5, 1, 12, 0, tzinfo=UTC).timestamp() * 1000)
UNTIL = NOW_MS - 60_000  # the first window is (UNTIL - 10 min, UNTIL]
PROM = GrafanaQuery(name="http_5xx", datasource_uid="prom", kind="prometheus", expr="sum(rate(x[1m]))")
LOKI = GrafanaQuery(name="pay_errors", datasource_uid="loki", kind="loki", expr='{app="payments"}',
                    max_lines=3)
PARSE_ERROR = "parse error at line 1, col 5: syntax error: unexpected IDENTIFIER"


def config(url: str, *queries: GrafanaQuery, **overrides: object) -> PollersFile:
    section = {"base_url": url, "org_id": 1, "annotations": False, "alerts": False,
               "queries": [q.model_dump() for q in queries], **overrides}
    return PollersFile(grafana=GrafanaConfig.model_validate(section))


@pytest.mark.parametrize("multi_status", [False, True], ids=["http-400", "http-207"])
def test_a_query_failing_in_its_datasource_holds_its_window_then_dead_letters_it_with_grafanas_error(
    multi_status: bool,
) -> None:
    with FakeGrafana() as fake:
        fake.multi_status = multi_status
        fake.query_errors[PROM.expr] = (400, PARSE_ERROR)
        fake.frames[PROM.expr] = [prometheus_frame({"service": "payments"}, [(UNTIL + 60_000, 2.0)])]
        wiring, publisher, cursors, clock, metrics = memory_wiring(ENV)

        async def run() -> None:
            async with open_poller("grafana", config(fake.url, PROM, object_attempts=2, park_s=300),
                                   wiring) as poller:
                await poller.cycle()
                assert cursors.load("grafana/query:http_5xx") is None, "the failed window was skipped"
                await poller.cycle()  # the second failure parks the query and reports its window
                await poller.cycle()  # parked: Grafana is not asked
                assert len(fake.calls("/api/ds/query")) == 2
                del fake.query_errors[PROM.expr]
                clock.advance(300)
                await poller.cycle()

        asyncio.run(run())
    [letter] = decoded_dead_letters(publisher)
    assert letter.error_type == "object_parked"
    assert PARSE_ERROR in letter.reason and "http_5xx parked" in letter.reason
    assert metrics.value("seismo_poller_object_errors_total", reason="rejected") == 2
    assert [e.metric.value for e in decoded_events(publisher) if e.metric] == [2.0]
    assert cursors.load("grafana/query:http_5xx") == {"to": UNTIL + 300_000}


@pytest.mark.parametrize(("status", "message"), [(403, "Access denied to data source"),
                                                 (404, "Data source not found")])
def test_a_datasource_that_cannot_be_queried_is_reported_and_the_other_queries_go_on(
    status: int, message: str
) -> None:
    with FakeGrafana() as fake:
        fake.datasource_errors["loki"] = status
        fake.frames[PROM.expr] = [prometheus_frame({"service": "payments"}, [(UNTIL, 1.0)])]
        wiring, publisher, cursors, _, _ = memory_wiring(ENV)

        async def run() -> None:
            cfg = config(fake.url, PROM, LOKI, object_attempts=2)
            async with open_poller("grafana", cfg, wiring) as poller:
                for _ in range(2):
                    await poller.cycle()

        asyncio.run(run())
    [letter] = decoded_dead_letters(publisher)
    assert message in letter.reason and "pay_errors parked" in letter.reason
    assert [e.metric.value for e in decoded_events(publisher) if e.metric] == [1.0]
    assert cursors.load("grafana/query:pay_errors") == {"to": UNTIL}


def test_a_loki_page_cut_at_max_lines_is_read_on_from_its_newest_line_and_nothing_is_lost() -> None:
    start = UNTIL - 500_000  # two lines share a millisecond now and then, as they do in Loki
    offsets = [0, 0, 1000, 2000, 2000, 5000, 9000, 9000]
    lines = [({"app": "payments"}, start + ms, f"ERROR charge {i}") for i, ms in enumerate(offsets)]
    lines.append(({"app": "payments"}, UNTIL, "ERROR at the window's very end"))
    with FakeGrafana() as fake:
        fake.loki_lines[LOKI.expr] = lines
        wiring, publisher, cursors, _, metrics = memory_wiring(ENV)
        asyncio.run(_one_cycle(config(fake.url, LOKI), wiring))
        calls = fake.calls("/api/ds/query")
    assert {c.body["queries"][0]["direction"] for c in calls} == {"forward"}
    assert sorted(e.message for e in decoded_events(publisher)) == sorted(line for _, _, line in lines)
    assert metrics.value("seismo_poller_truncated_total") >= 2
    assert decoded_dead_letters(publisher) == []
    assert cursors.load("grafana/query:pay_errors") == {"to": UNTIL}


def test_more_lines_than_max_lines_in_one_millisecond_are_dead_lettered_as_truncated() -> None:
    lines = [({"app": "payments"}, UNTIL - 120_000, f"ERROR burst {i}") for i in range(5)]
    lines.append(({"app": "payments"}, UNTIL - 60_000, "ERROR after the burst"))
    with FakeGrafana() as fake:
        fake.loki_lines[LOKI.expr] = lines
        wiring, publisher, cursors, _, _ = memory_wiring(ENV)
        asyncio.run(_one_cycle(config(fake.url, LOKI), wiring))
    [letter] = decoded_dead_letters(publisher)
    assert letter.error_type == "truncated" and "max_lines=3" in letter.reason
    messages = [e.message for e in decoded_events(publisher)]
    assert len(messages) == 4 and "ERROR after the burst" in messages
    assert cursors.load("grafana/query:pay_errors") == {"to": UNTIL}


async def _one_cycle(cfg: PollersFile, wiring: object) -> None:
    async with open_poller("grafana", cfg, wiring) as poller:  # type: ignore[arg-type]
        await poller.cycle()
