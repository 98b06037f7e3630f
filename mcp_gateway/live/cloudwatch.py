"""CloudWatch live tools over the poller's boto3 clients (:func:`producers.sources.cloudwatch.make_clients`).

Only read calls: ``FilterLogEvents``, ``StartQuery``/``GetQueryResults`` (Logs
Insights, split on the 10,000-row cap by
:func:`producers.sources.cloudwatch_insights.query_split`), ``GetMetricData``,
``DescribeAlarms`` and ``DescribeAlarmHistory``.  Clients are built on first use
in a worker thread (assuming ``role_arn`` is an STS call) and closed with the
registration's exit stack.  Throttling and 5xx are retryable tool errors,
``ResourceNotFoundException`` a not-found one.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Annotated, Any, Literal, TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from mcp.server.mcpserver import MCPServer
from pydantic import Field

from mcp_gateway.live.errors import LiveToolError, NotFound, Rejected, Retryable
from mcp_gateway.live.guard import SourceGuard
from mcp_gateway.live.shape import Compact, Listing, Untrusted, add_tools, fence_tail, ident, listing
from producers.sources.cloudwatch import CloudWatchClients, make_clients, settings_from_section
from producers.sources.cloudwatch_calls import THROTTLING_CODES
from producers.sources.cloudwatch_insights import ROW_CAP, query_split

T = TypeVar("T")
MaxItems = Annotated[int, Field(ge=1, le=1000)]
Minutes = Annotated[int, Field(ge=1, le=20160)]
_STAT = re.compile(r"^(SampleCount|Average|Sum|Minimum|Maximum|(p|tm|wm|tc|ts)\d{1,2}(\.\d{1,2})?)$")
LOG_PAGES = 5
_METRIC_PART = re.compile(r"^[^\x00-\x1f]{1,255}$")


class LogEvents(Compact):
    log_group: str
    events: int
    omitted: int
    more: bool
    text: Untrusted


class InsightsResult(Compact):
    status: str
    query_id: str | None
    rows: int
    omitted: int
    queries: int = 1
    text: Untrusted | None = None


class MetricSeries(Compact):
    label: str
    stat: str
    points: int
    min: float | None
    max: float | None
    last: float | None
    values: list[tuple[str, float]]


class Alarm(Compact):
    name: str
    state: str
    updated: str | None
    reason: str
    metric: str | None
    dimensions: dict[str, str]
    threshold: str | None


class AlarmList(Listing[Alarm]):
    pass


class HistoryItem(Compact):
    time: str
    type: str
    summary: str


class AlarmHistory(Listing[HistoryItem]):
    pass


def translate(exc: Exception, what: str) -> LiveToolError:
    """The tool error for a failed boto3 call."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code, message = str(error.get("Code", "")), str(error.get("Message", ""))[:200]
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in THROTTLING_CODES or status == 429 or status >= 500:
            return Retryable(f"cloudwatch: {code or status} for {what}")
        if code == "ResourceNotFoundException" or status == 404:
            return NotFound(f"cloudwatch: {what} not found ({message})")
        return Rejected(f"cloudwatch refused {what}: {code}: {message}")
    return Retryable(f"cloudwatch is unreachable for {what} ({type(exc).__name__})")


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def _log_line(e: Mapping[str, Any]) -> str:
    when = _iso(datetime.fromtimestamp(e["timestamp"] / 1000, UTC))
    return f"{when} {e.get('logStreamName', '')} {str(e.get('message', '')).rstrip()}"


def _alarm(a: Mapping[str, Any]) -> Alarm:
    updated = a.get("StateUpdatedTimestamp")
    return Alarm(name=a["AlarmName"], state=a.get("StateValue", ""),
                 updated=_iso(updated) if updated else None,
                 reason=str(a.get("StateReason", ""))[:300],
                 metric=f"{a.get('Namespace')}/{a['MetricName']}" if a.get("MetricName") else None,
                 dimensions={d["Name"]: d["Value"] for d in a.get("Dimensions", [])},
                 threshold=f"{a.get('ComparisonOperator')} {a['Threshold']}" if "Threshold" in a else None)


def _rows(result: Mapping[str, Any]) -> list[dict[str, str]]:
    return [{f["field"]: f["value"] for f in row if "field" in f and "value" in f}
            for row in result.get("results", [])]


def register(server: MCPServer, section: Mapping[str, Any], guard: SourceGuard, max_chars: int,
             stack: ExitStack) -> set[str]:
    """Register the ``cloudwatch_*`` tools; raises ConfigError for an invalid section."""
    settings = settings_from_section(section)
    built: list[CloudWatchClients] = []
    lock = asyncio.Lock()

    def close() -> None:
        for c in built:
            c.logs.close()
            c.cloudwatch.close()

    stack.callback(close)

    async def clients() -> CloudWatchClients:
        async with lock:
            if not built:
                built.append(await asyncio.to_thread(make_clients, settings))
        return built[0]

    async def aws(what: str, call: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(call)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, what) from None

    async def cloudwatch_filter_log_events(
            log_group: str, filter_pattern: Annotated[str, Field(max_length=1024)] | None = None,
            since_minutes: Minutes = 60, max_items: MaxItems = 200) -> LogEvents:
        """The newest log events of a group matching a CloudWatch filter pattern (`more`: older
        than the pages read)."""
        group = ident("log_group", log_group)

        async def fetch() -> LogEvents:
            logs = (await clients()).logs
            now = datetime.now(UTC)
            start = now - timedelta(minutes=since_minutes)
            kwargs: dict[str, Any] = {"logGroupName": group, "startTime": _ms(start), "endTime": _ms(now)}
            if filter_pattern:
                kwargs["filterPattern"] = filter_pattern
            events: list[dict[str, Any]] = []
            token: str | None = None
            for _ in range(LOG_PAGES):  # oldest first: read on, keep the newest `max_items`
                paging: dict[str, Any] = {"nextToken": token} if token else {}
                page = await aws(f"log group {group}", partial(logs.filter_log_events, **kwargs, **paging))
                events = (events + [dict(e) for e in page.get("events", [])])[-max_items:]
                token = page.get("nextToken")
                if not token:
                    break
            text, kept, omitted = fence_tail([_log_line(e) for e in events], max_chars)
            return LogEvents(log_group=group, events=kept, omitted=omitted, more=bool(token), text=text)

        args = {"g": group, "f": filter_pattern, "m": since_minutes, "n": max_items}
        return await guard.run("cloudwatch_filter_log_events", args, LogEvents, fetch)

    def insights(rows: list[dict[str, str]], status: str, query_id: str | None,
                 queries: int) -> InsightsResult:
        text, kept, omitted = fence_tail([json.dumps(r, sort_keys=True) for r in rows], max_chars)
        return InsightsResult(status=status, query_id=query_id, rows=kept, omitted=omitted, queries=queries,
                              text=text if rows else None)

    async def cloudwatch_insights_query(
            log_groups: Annotated[list[str], Field(min_length=1, max_length=20)],
            query: Annotated[str, Field(min_length=1, max_length=10000)],
            since_minutes: Minutes = 60, wait_s: Annotated[int, Field(ge=0, le=60)] = 20) -> InsightsResult:
        """Run a Logs Insights query (a window at 10,000 rows is split). Running after `wait_s`:
        poll cloudwatch_insights_results(query_id)."""
        groups = [ident("log_group", g) for g in log_groups]
        running: list[str] = []

        async def fetch() -> InsightsResult:
            logs = (await clients()).logs
            clock = guard.clock
            deadline = clock.monotonic() + wait_s

            async def run(start: int, end: int) -> list[dict[str, str]]:
                started = await aws("an Insights query", lambda: logs.start_query(
                    logGroupNames=groups, startTime=start, endTime=end, queryString=query, limit=ROW_CAP))
                qid = started["queryId"]
                running.append(qid)
                while True:
                    result = await aws(f"Insights query {qid}", lambda: logs.get_query_results(queryId=qid))
                    status = result.get("status", "Unknown")
                    if status == "Complete":
                        return _rows(result)
                    if status not in ("Running", "Scheduled"):
                        raise Retryable(f"cloudwatch: Insights query {qid} ended {status}")
                    if clock.monotonic() >= deadline:
                        raise _StillRunning(qid)
                    await clock.sleep(1.0)

            now = int(datetime.now(UTC).timestamp())
            try:
                rows = await query_split(run, now - since_minutes * 60, now)
            except _StillRunning as still:
                return insights([], "Running", still.query_id, len(running))
            return insights(rows, "Complete", running[-1] if len(running) == 1 else None, len(running))

        args = {"g": groups, "q": query, "m": since_minutes, "w": wait_s}
        return await guard.run("cloudwatch_insights_query", args, InsightsResult, fetch,
                               cache_if=lambda r: r.status == "Complete")

    async def cloudwatch_insights_results(query_id: str) -> InsightsResult:
        """Status and rows of a Logs Insights query started by cloudwatch_insights_query."""
        qid = ident("query_id", query_id)

        async def fetch() -> InsightsResult:
            logs = (await clients()).logs
            result = await aws(f"Insights query {qid}", lambda: logs.get_query_results(queryId=qid))
            return insights(_rows(result), str(result.get("status", "Unknown")), qid, 1)

        return await guard.run("cloudwatch_insights_results", {"q": qid}, InsightsResult, fetch,
                               cache_if=lambda r: r.status == "Complete")

    async def cloudwatch_metric_data(
            namespace: str, metric: str, dimensions: dict[str, str] | None = None, stat: str = "Average",
            period_s: Annotated[int, Field(ge=1, le=86400)] = 60,
            since_minutes: Minutes = 60) -> MetricSeries:
        """One metric series (GetMetricData) with exact dimensions, e.g. {"LoadBalancer": "app/x/1"}."""
        dims = dict(dimensions or {})
        for part in [namespace, metric, *dims, *dims.values()]:
            if not _METRIC_PART.fullmatch(part):
                raise Rejected(f"invalid metric namespace, name or dimension: {part[:80]!r}")
        if not _STAT.fullmatch(stat) or len(dims) > 30:
            raise Rejected("stat: Average, Sum, Minimum, Maximum, SampleCount or a percentile like p99")

        async def fetch() -> MetricSeries:
            cw = (await clients()).cloudwatch
            now = datetime.now(UTC)
            query: Any = [{"Id": "m0", "ReturnData": True, "MetricStat": {
                "Period": period_s, "Stat": stat, "Metric": {
                    "Namespace": namespace, "MetricName": metric,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()]}}}]
            page = await aws(f"metric {namespace}/{metric}", lambda: cw.get_metric_data(
                MetricDataQueries=query, StartTime=now - timedelta(minutes=since_minutes), EndTime=now,
                ScanBy="TimestampAscending", MaxDatapoints=5000))
            result = (page.get("MetricDataResults") or [{}])[0]
            points = list(zip(result.get("Timestamps", []), result.get("Values", []), strict=False))
            step = max(1, len(points) // 120)
            values = [v for _, v in points]
            return MetricSeries(label=f"{namespace} {metric} {dims}", stat=stat, points=len(points),
                                min=min(values, default=None), max=max(values, default=None),
                                last=values[-1] if values else None,
                                values=[(_iso(t), float(v)) for t, v in points[::step]][:120])

        args = {"ns": namespace, "m": metric, "d": dims, "s": stat, "p": period_s, "mi": since_minutes}
        return await guard.run("cloudwatch_metric_data", args, MetricSeries, fetch)

    async def cloudwatch_alarms(state: Literal["ALARM", "OK", "INSUFFICIENT_DATA"] | None = "ALARM",
                                prefix: str | None = None, max_items: MaxItems = 50) -> AlarmList:
        """Metric alarms, by state (default ALARM) and name prefix, most recently changed first."""
        if prefix is not None:
            ident("aws_name", prefix)

        async def fetch() -> AlarmList:
            cw = (await clients()).cloudwatch
            kwargs: dict[str, Any] = {"MaxRecords": 100}
            if state:
                kwargs["StateValue"] = state
            if prefix:
                kwargs["AlarmNamePrefix"] = prefix
            page = await aws("alarms", lambda: cw.describe_alarms(**kwargs))
            alarms = sorted(page.get("MetricAlarms", []), key=lambda a: a.get("StateUpdatedTimestamp")
                            or datetime.min.replace(tzinfo=UTC), reverse=True)
            items = [_alarm(a) for a in alarms]
            return listing(AlarmList, items, max_items, max_chars, key=lambda a: a.state)

        args = {"s": state, "p": prefix, "n": max_items}
        return await guard.run("cloudwatch_alarms", args, AlarmList, fetch)

    async def cloudwatch_alarm_history(alarm_name: str, since_hours: Annotated[int, Field(ge=1, le=336)] = 24,
                                       max_items: MaxItems = 50) -> AlarmHistory:
        """An alarm's history (state changes, config updates, actions), newest first."""
        name = ident("aws_name", alarm_name)

        async def fetch() -> AlarmHistory:
            cw = (await clients()).cloudwatch
            now = datetime.now(UTC)
            page = await aws(f"history of alarm {name}", lambda: cw.describe_alarm_history(
                AlarmName=name, StartDate=now - timedelta(hours=since_hours), EndDate=now,
                MaxRecords=100, ScanBy="TimestampDescending"))
            items = [HistoryItem(time=_iso(h["Timestamp"]), type=str(h.get("HistoryItemType", "")),
                                 summary=str(h.get("HistorySummary", ""))[:500])
                     for h in page.get("AlarmHistoryItems", [])]
            return listing(AlarmHistory, items, max_items, max_chars, key=lambda h: h.type)

        args = {"a": name, "h": since_hours, "n": max_items}
        return await guard.run("cloudwatch_alarm_history", args, AlarmHistory, fetch)

    tools: list[Callable[..., Any]] = [cloudwatch_filter_log_events, cloudwatch_insights_query,
                                       cloudwatch_insights_results, cloudwatch_metric_data, cloudwatch_alarms,
                                       cloudwatch_alarm_history]
    return add_tools(server, tools)


class _StillRunning(Exception):
    def __init__(self, query_id: str) -> None:
        super().__init__(query_id)
        self.query_id = query_id
