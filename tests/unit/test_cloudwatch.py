"""Pure logic of the CloudWatch source: the Insights row-cap split, cursors, mapping, throttling."""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError

from producers.mapping import MappingRules, ServiceMapper
from producers.metrics import RecordingMetrics
from producers.ratelimit import Backoff, FakeClock
from producers.sources.cloudwatch import CloudWatchSettings, source_context
from producers.sources.cloudwatch_alarms import alarm_event, alarm_service, from_history, unseen
from producers.sources.cloudwatch_calls import AwsCaller, AwsThrottled
from producers.sources.cloudwatch_insights import Row, parse_insights_time, query_split
from producers.sources.cloudwatch_logs import GroupCursor, advance, severity_of
from schemas.models import Severity

AT = datetime(2024, 5, 14, 8, 0, tzinfo=UTC)


class FakeInsights:
    """Answers like Insights over one row per second of ``stamps``, truncated at ``cap`` rows."""

    def __init__(self, stamps: list[int], cap: int) -> None:
        self.stamps, self.cap = stamps, cap
        self.calls: list[tuple[int, int]] = []

    async def __call__(self, start: int, end: int) -> list[Row]:
        self.calls.append((start, end))
        hits = [s for s in self.stamps if start <= s <= end]
        return [{"@ptr": str(i), "@timestamp": str(s * 1000)} for i, s in enumerate(hits)][: self.cap]


def test_a_window_under_the_row_cap_is_queried_once() -> None:
    fake = FakeInsights(list(range(0, 100, 10)), cap=20)
    assert len(asyncio.run(query_split(fake, 0, 99, cap=20))) == 10
    assert fake.calls == [(0, 99)]


def test_a_window_at_the_row_cap_is_split_in_halves_until_every_row_is_read() -> None:
    stamps = [s for s in range(100) for _ in range(3)]  # 300 rows, 3 per second
    fake = FakeInsights(stamps, cap=40)
    rows = asyncio.run(query_split(fake, 0, 99, cap=40))
    assert sorted(int(r["@timestamp"]) // 1000 for r in rows) == stamps
    assert fake.calls[:3] == [(0, 99), (0, 49), (0, 24)]
    covered = sorted(c for c in fake.calls if len([s for s in stamps if c[0] <= s <= c[1]]) < 40)
    assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(covered))


def test_a_single_second_over_the_cap_is_returned_truncated_instead_of_splitting_forever() -> None:
    fake = FakeInsights([7] * 50, cap=10)
    assert len(asyncio.run(query_split(fake, 0, 15, cap=10))) == 10
    assert (7, 7) in fake.calls


def test_insights_timestamps_parse_in_both_the_aws_and_the_epoch_form() -> None:
    assert parse_insights_time("2024-05-14 08:00:00.000") == AT
    assert parse_insights_time(str(int(AT.timestamp() * 1000))) == AT


def test_a_log_cursor_remembers_the_ids_at_its_newest_timestamp_while_a_token_is_open() -> None:
    cur = GroupCursor(ts=100, ids=("a",), start=100, end=500)
    mid = advance(cur, [(100, "b"), (120, "c"), (120, "d")], token="t1")
    assert (mid.ts, mid.ids, mid.token, mid.start, mid.end) == (120, ("c", "d"), "t1", 100, 500)


def test_a_completed_log_window_moves_the_cursor_past_its_end() -> None:
    done = advance(GroupCursor(ts=120, ids=("c",), token="t1", start=100, end=500), [(130, "e")], None)
    assert (done.ts, done.ids, done.token) == (501, (), None)
    on_edge = advance(GroupCursor(ts=100, start=100, end=500), [(500, "z")], None)
    assert (on_edge.ts, on_edge.ids) == (501, ())


@pytest.mark.parametrize(("line", "severity"), [
    ("2024-05-14 ERROR payment failed", Severity.ERROR),
    ("Traceback (most recent call last):", Severity.ERROR),
    ("level=warn msg=slow", Severity.WARNING),
    ("FATAL out of memory", Severity.CRITICAL),
    ("GET /health 200", Severity.INFO),
])
def test_log_severity_comes_from_the_level_the_line_announces(line: str, severity: Severity) -> None:
    assert severity_of(line) is severity


def test_an_alarm_history_state_update_becomes_an_alert_transition() -> None:
    item = {"AlarmName": "payments-p95", "Timestamp": AT, "HistoryItemType": "StateUpdate",
            "HistoryData": json.dumps({"oldState": {"stateValue": "OK"},
                                       "newState": {"stateValue": "ALARM", "stateReason": "p95 > 800"}})}
    t = from_history(item)
    assert t is not None
    assert (t.alarm, t.state, t.old_state, t.at) == ("payments-p95", "ALARM", "OK", AT)
    event = alarm_event(t, "payments", "eu-west-1")
    assert (event.severity, event.attributes) == (
        Severity.ERROR, {"state": "ALARM", "alarm": "payments-p95", "old_state": "OK"})
    assert from_history({"AlarmName": "x", "Timestamp": AT, "HistoryData": "not json"}) is None


def test_alarm_services_come_from_dimensions_then_name_rules_then_the_first_word() -> None:
    mapper = ServiceMapper(MappingRules(aliases={"payments-api": "payments"}))
    assert alarm_service("x", {"ServiceName": "payments-api"}, mapper, {}) == "payments"
    assert alarm_service("db-conn-high", {}, mapper, {"db-*": "inventory"}) == "inventory"
    assert alarm_service("checkout-5xx", {}, mapper, {}) == "checkout"


def test_alarm_transitions_already_behind_the_cursor_are_not_repeated() -> None:
    data = json.dumps({"newState": {"stateValue": "OK"}})
    item = {"AlarmName": "a-b", "Timestamp": AT, "HistoryData": data}
    t = from_history(item)
    assert t is not None
    event = alarm_event(t, "a", "eu-west-1")
    fresh, cursor = unseen([event, event], None)
    assert fresh == [event]
    assert unseen([event], cursor) == ([], cursor)


class ThrottledOnce:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
                               "ResponseMetadata": {"HTTPStatusCode": 400}},  # type: ignore[typeddict-item]
                              "FilterLogEvents")
        return "page"


def test_throttling_is_retried_with_backoff_under_the_rate_limit() -> None:
    clock, metrics = FakeClock(AT), RecordingMetrics()
    caller = AwsCaller(source_context(CloudWatchSettings(), clock, metrics))
    call = ThrottledOnce(failures=2)
    assert asyncio.run(caller("logs:/x", call)) == "page"
    assert call.calls == 3
    assert metrics.value("seismo_poller_retries_total", source="cloudwatch") == 2
    assert len(clock.sleeps) >= 2
    assert all(s > 0 for s in clock.sleeps)


def test_throttling_that_outlasts_the_retries_surfaces_as_a_recoverable_error() -> None:
    ctx = source_context(CloudWatchSettings(), FakeClock(AT), RecordingMetrics(), Backoff(max_attempts=3))
    with pytest.raises(AwsThrottled, match="ThrottlingException"):
        asyncio.run(AwsCaller(ctx)("logs:/x", ThrottledOnce(failures=10)))


def test_access_denied_is_not_retried() -> None:
    def denied() -> str:
        error = {"Error": {"Code": "AccessDeniedException"}, "ResponseMetadata": {"HTTPStatusCode": 400}}
        raise ClientError(error, "FilterLogEvents")  # type: ignore[arg-type]

    ctx = source_context(CloudWatchSettings(), FakeClock(AT), RecordingMetrics())
    with pytest.raises(ClientError, match="AccessDenied"):
        asyncio.run(AwsCaller(ctx)("s", denied))
