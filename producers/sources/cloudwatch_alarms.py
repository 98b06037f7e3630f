"""CloudWatch alarms as ``alert`` events: DescribeAlarms for current states, DescribeAlarmHistory for
the transitions between two polls.

Each state transition is one Event whose id depends on (alarm name, transition
time, new state), so the same transition seen by both calls, or re-read after a
restart, keeps one id.  Severity follows the new state: ``ALARM`` → error,
``INSUFFICIENT_DATA`` → warning, ``OK`` → info (``attributes["state"]`` says which;
an ``OK`` alert tells the correlator that the alarm cleared).

Cursor: ``{"ts": ms of the newest transition read, "ids": [event ids at ts]}``;
transitions older than ``ts`` and those already listed at ``ts`` are skipped.
Turn ``history`` off for endpoints without DescribeAlarmHistory (e.g. moto).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from functools import partial
from typing import TYPE_CHECKING, Any

from producers.base import Batch
from producers.cursors import Cursor
from producers.mapping import ServiceMapper
from producers.sources.cloudwatch_calls import AwsCaller, stable_id, to_ms
from schemas.models import Entity, Event, EventKind, Severity, Source

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient

STATE_SEVERITY = {"ALARM": Severity.ERROR, "INSUFFICIENT_DATA": Severity.WARNING, "OK": Severity.INFO}


@dataclass(frozen=True)
class Transition:
    alarm: str
    state: str
    reason: str
    at: datetime
    old_state: str | None = None


def from_alarm(alarm: Mapping[str, Any]) -> Transition:
    """The transition that put a DescribeAlarms ``MetricAlarms`` item in its current state."""
    return Transition(alarm["AlarmName"], alarm["StateValue"], alarm.get("StateReason", ""),
                      alarm["StateUpdatedTimestamp"].astimezone(UTC))


def from_history(item: Mapping[str, Any]) -> Transition | None:
    """A DescribeAlarmHistory ``StateUpdate`` item, or None for other item types / unreadable data."""
    try:
        data = json.loads(item.get("HistoryData") or "{}")
        new, old = data["newState"], data.get("oldState", {})
        return Transition(item["AlarmName"], new["stateValue"], new.get("stateReason", ""),
                          item["Timestamp"].astimezone(UTC), old.get("stateValue"))
    except (KeyError, TypeError, ValueError):
        return None


def alarm_service(alarm: str, dimensions: Mapping[str, str], mapper: ServiceMapper,
                  alarm_rules: Mapping[str, str]) -> str:
    """The service from the alarm's metric dimensions, else the first glob in ``alarm_rules``
    matching the alarm name, else the alarm name's first dash-separated word."""
    fallback = next((svc for pattern, svc in alarm_rules.items() if fnmatchcase(alarm, pattern)),
                    alarm.split("-", 1)[0])
    return mapper.for_cloudwatch_dimensions(dimensions, fallback=fallback)


def alarm_event(t: Transition, service: str, region: str) -> Event:
    attributes = {"state": t.state, "alarm": t.alarm, **({"old_state": t.old_state} if t.old_state else {})}
    return Event(
        id=stable_id("cwa", t.alarm, to_ms(t.at), t.state), source=Source.CLOUDWATCH, kind=EventKind.ALERT,
        timestamp=t.at, service=service, entity=Entity(region=region),
        severity=STATE_SEVERITY.get(t.state, Severity.WARNING),
        message=f"{t.state}: {t.alarm}: {t.reason}".rstrip(": "), attributes=attributes,
    )


def unseen(events: Iterable[Event], cursor: Cursor | None) -> tuple[list[Event], Cursor]:
    """Events newer than the cursor (deduplicated, ordered) and the cursor after them."""
    ts = int(cursor["ts"]) if cursor else 0
    ids = set(cursor.get("ids", ())) if cursor else set()
    fresh: dict[str, Event] = {}
    for e in events:
        ms = to_ms(e.timestamp)
        if ms > ts or (ms == ts and e.id not in ids):
            fresh[e.id] = e
    ordered = sorted(fresh.values(), key=lambda e: (e.timestamp, e.id))
    if ordered:
        newest = to_ms(ordered[-1].timestamp)
        ids = (ids if newest == ts else set()) | {e.id for e in ordered if to_ms(e.timestamp) == newest}
        ts = newest
    return ordered, {"ts": ts, "ids": sorted(ids)}


class AlarmsStream:
    """Alarms whose names start with ``prefix`` (all when empty)."""

    def __init__(self, client: CloudWatchClient, caller: AwsCaller, mapper: ServiceMapper, *,
                 region: str, prefix: str = "", history: bool = True, lookback_s: float = 3600.0,
                 alarm_rules: Mapping[str, str] | None = None) -> None:
        self.client, self.caller, self.mapper = client, caller, mapper
        self.region, self.prefix, self.history, self.lookback_s = region, prefix, history, lookback_s
        self.alarm_rules = dict(alarm_rules or {})

    @property
    def name(self) -> str:
        return f"alarms:{self.prefix or '*'}"

    async def fetch(self, cursor: Cursor | None) -> Batch:
        """Current states plus (with ``history``) every transition since the cursor, in one batch."""
        now = self.caller.ctx.clock.now()
        since = datetime.fromtimestamp(int(cursor["ts"]) / 1000, UTC) if cursor else now - timedelta(
            seconds=self.lookback_s)
        alarms = await self._pages("describe_alarms", {"AlarmNamePrefix": self.prefix} if self.prefix else {},
                                   "MetricAlarms")
        dims = {a["AlarmName"]: {d["Name"]: d["Value"] for d in a.get("Dimensions", [])} for a in alarms}
        transitions = [from_alarm(a) for a in alarms if a["StateUpdatedTimestamp"] >= since]
        if self.history:
            args: dict[str, Any] = {"HistoryItemType": "StateUpdate", "StartDate": since, "EndDate": now}
            items = await self._pages("describe_alarm_history", args, "AlarmHistoryItems")
            transitions += [t for t in map(from_history, items)
                            if t is not None and t.alarm.startswith(self.prefix)]
        events = [alarm_event(t, alarm_service(t.alarm, dims.get(t.alarm, {}), self.mapper, self.alarm_rules),
                              self.region) for t in transitions]
        fresh, new_cursor = unseen(events, cursor)
        return Batch(fresh, (), new_cursor)

    async def _pages(self, operation: str, args: dict[str, Any], key: str) -> list[dict[str, Any]]:
        method = getattr(self.client, operation)
        out: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            kwargs = {**args, **({"NextToken": token} if token else {})}
            page = await self.caller(self.name, partial(method, **kwargs))
            out.extend(page.get(key, []))
            token = page.get("NextToken")
            if not token:
                return out
