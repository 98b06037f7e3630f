"""CloudWatch Logs Insights: a saved query run over consecutive time windows.

StartQuery + GetQueryResults polling (on the injected clock) for each window.
Insights returns at most 10,000 rows; :func:`query_split` re-runs a window that
hit the cap as two halves, recursively, down to one second (a single second
that still hits the cap is returned truncated and logged).

Time ranges are whole epoch seconds, inclusive at both ends as AWS documents
them, so halves are ``[start, mid]`` and ``[mid + 1, end]`` and the window after
``[start, end]`` begins at ``end + 1``.  Cursor: ``{"next_start": seconds}``.
Event ids derive from ``@log`` and ``@ptr``, so a re-run window repeats ids, not
events.  The query must return ``@timestamp``, ``@message``, ``@log`` and ``@ptr``.

A query that cannot run (a log group deleted or denied, ``MalformedQueryException``,
a run that ends ``Failed``/``Timeout``) follows :mod:`producers.sources.objects`: the
window is held and run again next cycle, up to ``object_attempts`` times; then the
window is dead-lettered with AWS's error (``object_parked``), the cursor moves past it
and the query is parked for ``park_s``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from producers.base import Batch, Rejected
from producers.cursors import Cursor
from producers.mapping import ServiceMapper
from producers.sources.cloudwatch_calls import AwsCaller, AwsThrottled, from_ms, object_failure, stable_id
from producers.sources.cloudwatch_logs import severity_of
from producers.sources.objects import Failure, ObjectGuard, Verdict
from schemas.models import Entity, Event, EventKind, Source

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient

log = logging.getLogger(__name__)

ROW_CAP = 10_000
DEFAULT_QUERY = "fields @timestamp, @message, @logStream, @log, @ptr | sort @timestamp asc | limit 10000"
Row = dict[str, str]
QueryFn = Callable[[int, int], Awaitable[list[Row]]]


class InsightsFailed(AwsThrottled):
    """A query run ended ``Failed``, ``Cancelled``, ``Timeout`` or ``Unknown``; the window is run again."""


async def query_split(run: QueryFn, start: int, end: int, cap: int = ROW_CAP) -> list[Row]:
    """All rows of ``[start, end]``: ``run`` once, and again on halves while a result hits ``cap``."""
    rows = await run(start, end)
    if len(rows) < cap:
        return rows
    if end <= start:
        log.warning("Insights window at %d s alone holds %d+ rows; the rest is not read", start, cap)
        return rows
    mid = (start + end) // 2
    return await query_split(run, start, mid, cap) + await query_split(run, mid + 1, end, cap)


def parse_insights_time(value: str) -> datetime:
    """``@timestamp`` as AWS prints it (``2024-05-14 08:00:00.000``) or as epoch milliseconds."""
    if value.isdigit():
        return from_ms(int(value))
    return datetime.strptime(value, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)


def insights_event(row: Row, mapper: ServiceMapper, region: str) -> Event:
    """One result row as an Event; raises KeyError/ValueError when a needed field is missing."""
    group = row["@log"].split(":", 1)[-1]  # AWS prefixes the account id: "123456789012:/aws/…"
    message = row["@message"]
    extra = {k.lstrip("@"): v for k, v in row.items() if k not in ("@timestamp", "@message", "@log", "@ptr")}
    return Event(
        id=stable_id("cwi", group, row["@ptr"]), source=Source.CLOUDWATCH, kind=EventKind.LOG,
        timestamp=parse_insights_time(row["@timestamp"]), service=mapper.for_cloudwatch_log_group(group),
        entity=Entity(log_group=group, region=region), severity=severity_of(message),
        message=message.rstrip("\n"), attributes=extra,
    )


class InsightsStream:
    """One Insights query over ``log_groups``; each fetch reads the next window (at most ``max_window_s``)."""

    def __init__(self, client: CloudWatchLogsClient, caller: AwsCaller, mapper: ServiceMapper, *,
                 name: str, log_groups: list[str], region: str, query: str = DEFAULT_QUERY,
                 delay_s: float = 120.0, lookback_s: float = 3600.0, max_window_s: int = 3600,
                 poll_s: float = 1.0) -> None:
        self.client, self.caller, self.mapper = client, caller, mapper
        self.query_name, self.log_groups, self.region, self.query = name, log_groups, region, query
        self.delay_s, self.lookback_s = delay_s, lookback_s
        self.max_window_s, self.poll_s = max_window_s, poll_s
        self.guard = ObjectGuard(caller.ctx, self.name)

    @property
    def name(self) -> str:
        return f"insights:{self.query_name}"

    async def run_query(self, start: int, end: int) -> list[Row]:
        """StartQuery, then GetQueryResults every ``poll_s`` until it completes.  Blocks on the clock."""
        started = await self.caller(self.name, lambda: self.client.start_query(
            logGroupNames=self.log_groups, startTime=start, endTime=end, queryString=self.query,
            limit=ROW_CAP))
        query_id = started["queryId"]
        while True:
            result = await self.caller(self.name, lambda: self.client.get_query_results(queryId=query_id))
            status = result.get("status", "Unknown")
            if status == "Complete":
                return [{f["field"]: f["value"] for f in row if "field" in f and "value" in f}
                        for row in result.get("results", [])]
            if status in ("Failed", "Cancelled", "Timeout", "Unknown"):
                raise InsightsFailed(f"Insights query {query_id} ended {status}; the window is run again")
            await self.caller.ctx.clock.sleep(self.poll_s)

    async def fetch(self, cursor: Cursor | None) -> Batch:
        """Run the next window; ``more`` when the window was shortened to ``max_window_s``."""
        now = int(self.caller.ctx.clock.now().timestamp())
        start = int(cursor["next_start"]) if cursor else now - int(self.lookback_s)
        ready = now - int(self.delay_s)
        if ready < start:
            return Batch()
        end = min(ready, start + self.max_window_s - 1)
        if self.guard.parked(self.query_name):
            return Batch()
        try:
            rows = await query_split(self.run_query, start, end)
        except (ClientError, InsightsFailed) as exc:
            failure = object_failure(exc) if isinstance(exc, ClientError) else Failure.REJECTED
            if failure is None:
                raise
            if failure is Failure.GONE:
                failure = Failure.REJECTED  # skipping a window would lose it silently
            error = f"window [{start}, {end}]: {exc}"
            verdict, letter = self.guard.failed(self.query_name, failure, error)
            if verdict is Verdict.PARK and letter is not None:
                return Batch((), [letter], {"next_start": end + 1}, more=end < ready)
            return Batch()
        self.guard.succeeded(self.query_name)
        events: list[Event] = []
        rejected: list[Rejected] = []
        for row in rows:
            try:
                events.append(insights_event(row, self.mapper, self.region))
            except (KeyError, ValueError) as exc:
                rejected.append(Rejected(f"Insights row: {exc!r}", json.dumps(row).encode()))
        return Batch(events, rejected, {"next_start": end + 1}, more=end < ready)

