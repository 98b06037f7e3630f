"""CloudWatch Logs via FilterLogEvents: every log group under a prefix, one page per ``fetch``.

Cursor (one per prefix, JSON)::

    {"next": "<group to read next, or null at the start of a round>",
     "groups": {"<group>": {"ts": ms, "ids": [...], "token": str|null, "start": ms, "end": ms}}}

Per group the invariant is: every event with a timestamp below ``ts`` has been
read, and so have the events at ``ts`` whose ``eventId`` is in ``ids``.  A query
covers the window ``[start, end]`` (``end`` = now - ``delay``, to let CloudWatch's
ingestion settle); ``token`` is FilterLogEvents' ``nextToken`` inside that window.
After a restart the stored token continues the same window; a token AWS no longer
accepts is dropped and the window re-read from ``ts``, skipping ``ids``: nothing
is lost and nothing read twice.  Logs that arrive later than ``delay`` after their
own timestamp are missed — raise ``delay_s`` for sources that ingest late.

Pure logic (:func:`advance`, :func:`log_event`, :func:`severity_of`) is separate
from the stream (:class:`LogGroupsStream`), which does the I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from producers.base import Batch, Rejected
from producers.cursors import Cursor
from producers.mapping import ServiceMapper
from producers.sources.cloudwatch_calls import AwsCaller, from_ms, object_failure, stable_id, to_ms
from producers.sources.objects import ObjectGuard, Verdict
from schemas.models import Entity, Event, EventKind, Severity, Source

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient

_LEVELS = (
    (re.compile(r"\b(CRITICAL|FATAL|PANIC|EMERG(ENCY)?)\b", re.I), Severity.CRITICAL),
    (re.compile(r"\b(ERROR|ERR|EXCEPTION|Traceback)\b|OOMKilled", re.I), Severity.ERROR),
    (re.compile(r"\b(WARN|WARNING)\b", re.I), Severity.WARNING),
    (re.compile(r"\bDEBUG\b|\bTRACE\b"), Severity.DEBUG),
)


def severity_of(message: str) -> Severity:
    """The level a log line announces (first match wins, most severe first); info when none."""
    for pattern, severity in _LEVELS:
        if pattern.search(message[:512]):
            return severity
    return Severity.INFO


@dataclass(frozen=True)
class GroupCursor:
    ts: int
    ids: tuple[str, ...] = ()
    token: str | None = None
    start: int = 0
    end: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"ts": self.ts, "ids": list(self.ids), "token": self.token,
                "start": self.start, "end": self.end}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GroupCursor:
        return cls(int(data["ts"]), tuple(data.get("ids", ())), data.get("token"),
                   int(data.get("start", 0)), int(data.get("end", 0)))


def advance(cur: GroupCursor, seen: Sequence[tuple[int, str]], token: str | None) -> GroupCursor:
    """The cursor after a page holding ``seen`` (timestamp ms, eventId; ascending) and ``token``.

    Without a token the window is complete: everything up to ``end`` (inclusive)
    is read, so ``ts`` moves to ``end + 1`` with no ids.
    """
    ts, ids = cur.ts, list(cur.ids)
    for stamp, event_id in seen:
        if stamp > ts:
            ts, ids = stamp, [event_id]
        elif stamp == ts and event_id not in ids:
            ids.append(event_id)
    if token is None and cur.end + 1 > ts:
        ts, ids = cur.end + 1, []
    return GroupCursor(ts, tuple(ids), token, cur.start, cur.end)


def log_event(group: str, raw: dict[str, Any], mapper: ServiceMapper, region: str) -> Event:
    """One FilterLogEvents record as an Event; raises KeyError/ValueError on a malformed record."""
    message = str(raw["message"])
    return Event(
        id=stable_id("cwl", group, raw["eventId"]), source=Source.CLOUDWATCH, kind=EventKind.LOG,
        timestamp=from_ms(int(raw["timestamp"])), service=mapper.for_cloudwatch_log_group(group),
        entity=Entity(log_group=group, region=region), severity=severity_of(message),
        message=message.rstrip("\n"),
        attributes={"log_stream": str(raw.get("logStreamName", "")), "event_id": str(raw["eventId"])},
    )


class LogGroupsStream:
    """Reads the log groups whose names start with ``prefix``, round-robin, one page per fetch."""

    def __init__(self, client: CloudWatchLogsClient, caller: AwsCaller, mapper: ServiceMapper, *,
                 prefix: str, region: str, delay_s: float = 60.0, lookback_s: float = 3600.0,
                 page_size: int = 1000) -> None:
        self.client, self.caller, self.mapper = client, caller, mapper
        self.prefix, self.region = prefix, region
        self.delay_ms, self.lookback_ms = int(delay_s * 1000), int(lookback_s * 1000)
        self.page_size = page_size
        self._groups: list[str] = []
        self.guard = ObjectGuard(caller.ctx, self.name)

    @property
    def name(self) -> str:
        return f"logs:{self.prefix}"

    async def groups(self) -> list[str]:
        """Every log group under the prefix, sorted (DescribeLogGroups, all pages)."""
        names: list[str] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"logGroupNamePrefix": self.prefix}
            if token:
                kwargs["nextToken"] = token
            page = await self.caller(self.name, partial(self.client.describe_log_groups, **kwargs))
            names.extend(g["logGroupName"] for g in page.get("logGroups", []) if "logGroupName" in g)
            token = page.get("nextToken")
            if not token:
                return sorted(set(names))

    async def fetch(self, cursor: Cursor | None) -> Batch:
        """Read one page of one group; ``more`` while the round has groups or pages left.

        A group that cannot be read (:mod:`producers.sources.objects`): deleted since the
        round began (``ResourceNotFoundException``) leaves the cursor; denied
        (``AccessDeniedException``) is parked; another 4xx keeps its cursor and is tried
        again next round, then parked.  The round moves on to the next group either way.
        """
        state: dict[str, Any] = cursor or {"next": None, "groups": {}}
        if state.get("next") is None or not self._groups:
            self._groups = await self.groups()
        if not self._groups:
            return Batch()
        group = state["next"] if state.get("next") in self._groups else self._groups[0]
        now = to_ms(self.caller.ctx.clock.now())
        known = state["groups"].get(group)
        cur = GroupCursor.from_json(known) if known else GroupCursor(now - self.lookback_ms)
        if cur.token is None:
            cur = replace(cur, start=cur.ts, end=now - self.delay_ms)
        events: list[Event] = []
        rejected: list[Rejected] = []
        groups = dict(state["groups"])
        if self.guard.parked(group):
            pass  # its cursor stays; it is read again once the parking ends
        elif cur.end >= cur.start:
            try:
                page, start = await self._page(group, cur)
            except ClientError as exc:
                failure = object_failure(exc)
                if failure is None:
                    raise
                verdict, letter = self.guard.failed(group, failure, f"{exc.operation_name}: {exc}")
                rejected.extend([letter] if letter else [])
                if verdict is Verdict.SKIP:
                    groups.pop(group, None)
                return self._next(group, None, groups, events, rejected)
            self.guard.succeeded(group)
            cur = replace(cur, start=start)
            skip = set(cur.ids)
            raws = [r for r in page.get("events", [])
                    if not (r.get("timestamp") == cur.ts and r.get("eventId") in skip)]
            for raw in raws:
                try:
                    events.append(log_event(group, dict(raw), self.mapper, self.region))
                except (KeyError, ValueError, TypeError) as exc:
                    rejected.append(Rejected(f"{group}: {exc!r}", json.dumps(raw, default=str).encode()))
            seen = [(int(r["timestamp"]), str(r["eventId"])) for r in raws
                    if "timestamp" in r and "eventId" in r]
            cur = advance(cur, seen, page.get("nextToken") or None)
            groups[group] = cur.to_json()
        else:
            groups[group] = cur.to_json()
        return self._next(group, cur.token, groups, events, rejected)

    def _next(self, group: str, token: str | None, groups: dict[str, Any], events: list[Event],
              rejected: list[Rejected]) -> Batch:
        """The batch that moves the round on: the same group while it has a page token, else the next."""
        index = self._groups.index(group)
        following = group if token else next(iter(self._groups[index + 1:]), None)
        return Batch(events, rejected, {"next": following, "groups": groups}, more=following is not None)

    async def _page(self, group: str, cur: GroupCursor) -> tuple[dict[str, Any], int]:
        """One FilterLogEvents page and the ``startTime`` its ``nextToken`` belongs to."""
        # ``interleaved`` is deprecated (AWS always interleaves) but makes emulators sort across streams too.
        kwargs: dict[str, Any] = {"logGroupName": group, "startTime": cur.start, "endTime": cur.end,
                                  "limit": self.page_size, "interleaved": True}
        try:
            with_token = {**kwargs, "nextToken": cur.token} if cur.token else kwargs
            page = await self.caller(self.name, partial(self.client.filter_log_events, **with_token))
        except ClientError as exc:
            if not cur.token or exc.response.get("Error", {}).get("Code") != "InvalidParameterException":
                raise
            # An expired token: re-read the window from ``ts``; ``ids`` keeps the repeats out.
            kwargs["startTime"] = cur.ts
            page = await self.caller(self.name, partial(self.client.filter_log_events, **kwargs))
        return dict(page), int(kwargs["startTime"])
