"""Sentry: issues with their latest event, releases as deploys, transaction performance as metrics.

Streams (cursor key ``sentry/NAME``):

* ``issues:PROJECT`` — ``GET /api/0/projects/{org}/{project}/issues/?query=… lastSeen:>SINCE&sort=date``,
  paged through the ``Link`` header; for each issue
  ``GET /api/0/organizations/{org}/issues/{id}/events/latest/``.  One ``error``
  Event per (issue, latest event id).  Cursor ``{since, scan_max, page}``: a
  scan of every issue seen after ``since`` that resumes at ``page`` after a
  restart; when the last page is read, ``since`` becomes the newest ``lastSeen``.
  A latest event that cannot be read follows :mod:`producers.sources.objects`
  per issue: 404 (deleted, or not stored yet) publishes the issue from its list
  fields alone; another 4xx holds the page (read again next cycle) up to
  ``object_attempts`` times, then parks the issue (dead letter) and publishes it
  from its list fields; 403 parks it at once.

Rate limits: every Sentry response carries ``X-Sentry-Rate-Limit-Limit``,
``-Remaining``, ``-Reset`` (UTC epoch seconds when the window resets),
``-ConcurrentLimit`` and ``-ConcurrentRemaining`` (https://docs.sentry.io/api/ratelimits/).
:func:`sentry_rate_wait` turns "no request left in this window" into a pause
until ``Reset``: a 429 waits that long (Sentry does not promise ``Retry-After``)
and a 2xx that spent the last request holds the source's bucket.  The poller
sends one request at a time, so the concurrent limit is never the binding one;
a 429 for it (requests left, none concurrent) backs off like a 5xx.
* ``releases`` — ``GET /api/0/organizations/{org}/releases/``, newest first,
  down to the cursor's ``since``: one ``deploy`` Event per (release, configured project).
* ``performance:PROJECT`` — ``GET /api/0/organizations/{org}/events/`` (Discover)
  over whole windows of ``performance_window_s``: p95 duration and failure rate
  per transaction as ``metric`` Events.  Cursor ``{end}``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx

from producers.base import Batch, MalformedPayload, Rejected, SourceContext, Stream
from producers.config import SentryConfig, resolve_token
from producers.cursors import Cursor
from producers.mapping import ServiceMapper
from producers.ratelimit import Clock
from producers.sources import (
    AccessDenied,
    ApiRejected,
    HttpApi,
    build_client,
    compact_json,
    iso,
    parse_time,
)
from producers.sources.objects import ObjectGuard, Verdict, failure_of
from schemas.models import Entity, Event, EventKind, Metric, Severity, Source

_LINK = re.compile(
    r'<[^>]*>;\s*rel="(?P<rel>\w+)";\s*results="(?P<results>\w+)";\s*cursor="(?P<cursor>[^"]*)"'
)
_LEVELS = {"fatal": Severity.CRITICAL, "error": Severity.ERROR, "warning": Severity.WARNING,
           "info": Severity.INFO, "debug": Severity.DEBUG}


def next_cursor(link: str | None) -> str | None:
    """The ``rel="next"`` cursor of a Sentry ``Link`` header when ``results="true"``, else None."""
    for match in _LINK.finditer(link or ""):
        if match["rel"] == "next" and match["results"] == "true":
            return match["cursor"]
    return None


def sentry_rate_wait(headers: httpx.Headers, now: datetime) -> float | None:
    """Seconds until the rate-limit window resets when ``X-Sentry-Rate-Limit-Remaining`` is 0, else None."""
    remaining, reset = headers.get("X-Sentry-Rate-Limit-Remaining"), headers.get("X-Sentry-Rate-Limit-Reset")
    if remaining is None or reset is None:
        return None
    try:
        if int(remaining) > 0:
            return None
        return max(0.0, float(reset) - now.timestamp())
    except ValueError:
        return None


def _frames(latest: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The last exception value and its in-app frames, innermost first."""
    for entry in latest.get("entries") or []:
        if isinstance(entry, dict) and entry.get("type") == "exception":
            values = (entry.get("data") or {}).get("values") or []
            if values:
                exc = values[-1]
                frames = ((exc.get("stacktrace") or {}).get("frames")) or []
                in_app = [f for f in frames if isinstance(f, dict) and f.get("inApp")]
                return exc, list(reversed(in_app or frames))
    return {}, []


def _where(frame: dict[str, Any]) -> str:
    place = frame.get("filename") or frame.get("module") or "?"
    return f"{place}:{frame.get('lineNo') or '?'} {frame.get('function') or '?'}()"


def issue_event(
    org: str, issue: dict[str, Any], latest: dict[str, Any] | None, mapper: ServiceMapper
) -> Event:
    """One Sentry issue and its latest event as an ``error`` Event (pure; raises KeyError/ValueError)."""
    latest = latest or {}
    project = issue["project"]["slug"]
    exc, frames = _frames(latest)
    meta = issue.get("metadata") or {}
    exc_type = exc.get("type") or meta.get("type") or ""
    exc_value = exc.get("value") or meta.get("value") or ""
    headline = f"{exc_type}: {exc_value}" if exc_type else str(issue.get("title") or "")
    message = f"{headline} in {_where(frames[0])}" if frames else headline
    tags = {t["key"]: str(t["value"]) for t in latest.get("tags") or [] if isinstance(t, dict) and "key" in t}
    release = (latest.get("release") or {}).get("version") or tags.get("release")
    event_id = latest.get("eventID") or f"last-seen-{issue['lastSeen']}"
    attributes = {
        "issue_id": str(issue["id"]), "short_id": str(issue.get("shortId") or ""),
        "culprit": str(issue.get("culprit") or ""), "count": str(issue.get("count") or ""),
        "user_count": str(issue.get("userCount") or ""), "status": str(issue.get("status") or ""),
        "permalink": str(issue.get("permalink") or ""), "event_id": str(event_id),
        "exception_type": str(exc_type), "exception_value": str(exc_value),
        "frames": " | ".join(_where(f) for f in frames[:3]),
    }
    if "environment" in tags:
        attributes["environment"] = tags["environment"]
    return Event(
        id=f"sentry:{org}:issue:{issue['id']}:{event_id}",
        source=Source.SENTRY, kind=EventKind.ERROR,
        timestamp=parse_time(latest.get("dateCreated") or issue["lastSeen"]),
        service=mapper.for_sentry(project),
        entity=Entity(project=project, release=release),
        severity=_LEVELS.get(str(issue.get("level")), Severity.ERROR),
        message=message[:2000],
        attributes={k: v for k, v in attributes.items() if v},
    )


def release_events(org: str, release: dict[str, Any], projects: tuple[str, ...],
                   mapper: ServiceMapper) -> list[Event]:
    """A release as one ``deploy`` Event per configured project it belongs to (pure)."""
    deploy = release.get("lastDeploy") or {}
    when = parse_time(deploy.get("dateFinished") or release.get("dateReleased") or release["dateCreated"])
    env = deploy.get("environment")
    version = str(release["version"])
    out = []
    for project in release.get("projects") or []:
        slug = project.get("slug")
        if slug not in projects:
            continue
        attributes = {"version": version, "environment": env or "", "ref": release.get("ref") or "",
                      "new_groups": str(release.get("newGroups", ""))}
        out.append(Event(
            id=f"sentry:{org}:release:{version}:{slug}", source=Source.SENTRY, kind=EventKind.DEPLOY,
            timestamp=when, service=mapper.for_sentry(slug), entity=Entity(project=slug, release=version),
            severity=Severity.INFO,
            message=(f"Deployed {version}" + (f" to {env}" if env else "")) if deploy
            else f"Released {version}",
            attributes={k: v for k, v in attributes.items() if v},
        ))
    return out


def _fresh_scan(since: datetime) -> Cursor:
    return {"since": iso(since), "scan_max": None, "page": None}


class _ScanCursor:
    """Issues and releases: read pages newest-first down to ``since``; resumable at ``page``."""

    @staticmethod
    def after_page(cursor: Cursor, newest: str | None, page: str | None) -> Cursor:
        scan_max = max(filter(None, [cursor.get("scan_max"), newest]), default=None)
        if page is not None:
            return {"since": cursor.get("since"), "scan_max": scan_max, "page": page}
        return {"since": scan_max or cursor.get("since"), "scan_max": None, "page": None}


class IssuesStream:
    def __init__(self, cfg: SentryConfig, project: str, api: HttpApi, mapper: ServiceMapper,
                 clock: Clock) -> None:
        self.cfg, self.project, self.api, self.mapper, self.clock = cfg, project, api, mapper, clock
        self.name = f"issues:{project}"
        self.guard = ObjectGuard(api.ctx, self.name)

    async def fetch(self, cursor: Cursor | None) -> Batch:
        cursor = cursor or _fresh_scan(self.clock.now() - timedelta(hours=1))
        query = f"{self.cfg.issue_query} lastSeen:>{cursor['since']}".strip()
        params: dict[str, str | int] = {"query": query, "sort": "date", "limit": self.cfg.page_size}
        if cursor.get("page"):
            params["cursor"] = cursor["page"]
        if self.cfg.environment:
            params["environment"] = self.cfg.environment
        org = self.cfg.organization
        page = await self.api.get(self.name, f"/api/0/projects/{org}/{self.project}/issues/", params)
        events: list[Event] = []
        rejected: list[Rejected] = []
        newest: str | None = None
        hold = False
        for issue in page.body if isinstance(page.body, list) else []:
            try:
                seen = iso(parse_time(issue["lastSeen"]))
                body, retry = await self._latest(str(issue["id"]), rejected)
                if retry:
                    hold = True  # this page is read again next cycle; its other issues dedup by id
                    continue
                events.append(issue_event(org, issue, body, self.mapper))
                newest = max(filter(None, [newest, seen]))
            except (KeyError, TypeError, ValueError) as exc:
                rejected.append(Rejected(f"issue not understood: {exc!r}", compact_json(issue)))
        if not isinstance(page.body, list):
            rejected.append(Rejected("issues page is not a JSON list", page.raw[:65536]))
        if hold:
            return Batch(events, rejected, None)
        more = next_cursor(page.headers.get("Link"))
        return Batch(events, rejected, _ScanCursor.after_page(cursor, newest, more), more is not None)

    async def _latest(self, issue_id: str, rejected: list[Rejected]) -> tuple[dict[str, Any] | None, bool]:
        """The issue's latest event (None: publish the issue without it) and whether to hold the page.

        A malformed event is dead-lettered; a 4xx follows the per-object rules (module docstring).
        """
        path = f"/api/0/organizations/{self.cfg.organization}/issues/{issue_id}/events/latest/"
        key = f"issue {issue_id}"
        if self.guard.parked(key):
            return None, False
        try:
            latest = await self.api.get(self.name, path)
        except MalformedPayload as exc:
            rejected.append(Rejected(exc.reason, exc.payload, exc.error_type))
            return None, False
        except (ApiRejected, AccessDenied) as exc:
            failure = failure_of(exc)
            if failure is None:
                raise
            verdict, letter = self.guard.failed(key, failure, f"latest event: {exc}")
            rejected.extend([letter] if letter else [])
            return None, verdict is Verdict.RETRY
        self.guard.succeeded(key)
        return (latest.body if isinstance(latest.body, dict) else None), False


class ReleasesStream:
    name = "releases"

    def __init__(self, cfg: SentryConfig, api: HttpApi, mapper: ServiceMapper, clock: Clock) -> None:
        self.cfg, self.api, self.mapper, self.clock = cfg, api, mapper, clock

    async def fetch(self, cursor: Cursor | None) -> Batch:
        cursor = cursor or _fresh_scan(self.clock.now() - timedelta(days=1))
        since = parse_time(cursor["since"])
        params: dict[str, str | int] = {"per_page": self.cfg.page_size}
        if cursor.get("page"):
            params["cursor"] = cursor["page"]
        path = f"/api/0/organizations/{self.cfg.organization}/releases/"
        page = await self.api.get(self.name, path, params)
        events: list[Event] = []
        rejected: list[Rejected] = []
        newest: str | None = None
        reached_old = False
        for release in page.body if isinstance(page.body, list) else []:
            try:
                created = parse_time(release["dateCreated"])
                if created <= since:
                    reached_old = True
                    continue
                events.extend(release_events(self.cfg.organization, release, self.cfg.projects, self.mapper))
                newest = max(filter(None, [newest, iso(created)]))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                rejected.append(Rejected(f"release not understood: {exc!r}", compact_json(release)))
        more = None if reached_old else next_cursor(page.headers.get("Link"))
        return Batch(events, rejected, _ScanCursor.after_page(cursor, newest, more), more is not None)


class PerformanceStream:
    def __init__(self, cfg: SentryConfig, project: str, api: HttpApi, mapper: ServiceMapper,
                 clock: Clock) -> None:
        self.cfg, self.project, self.api, self.mapper, self.clock = cfg, project, api, mapper, clock
        self.name = f"performance:{project}"

    async def fetch(self, cursor: Cursor | None) -> Batch:
        window = timedelta(seconds=self.cfg.performance_window_s)
        now = self.clock.now()
        start = parse_time(cursor["end"]) if cursor else _align(now - window, window)
        end = start + window
        if end > now:
            return Batch()
        params = [("field", "transaction"), ("field", "p95()"), ("field", "failure_rate()"),
                  ("field", "count()"), ("query", f"event.type:transaction project:{self.project}"),
                  ("start", iso(start)), ("end", iso(end)), ("sort", "-count()"), ("per_page", "100")]
        page = await self.api.get(self.name, f"/api/0/organizations/{self.cfg.organization}/events/", params)
        rows = page.body.get("data") if isinstance(page.body, dict) else None
        events: list[Event] = []
        rejected: list[Rejected] = []
        for row in rows if isinstance(rows, list) else []:
            try:
                events.extend(self._metrics(row, end))
            except (KeyError, TypeError, ValueError) as exc:
                rejected.append(Rejected(f"performance row not understood: {exc!r}", compact_json(row)))
        if not isinstance(rows, list):
            rejected.append(Rejected("discover response has no 'data' list", page.raw[:65536]))
        return Batch(events, rejected, {"end": iso(end)}, end + window <= now)

    def _metrics(self, row: dict[str, Any], end: datetime) -> list[Event]:
        tx = str(row["transaction"])
        service = self.mapper.for_sentry(self.project)
        attrs = {"transaction": tx, "count": str(row.get("count()", "")),
                 "window_s": str(self.cfg.performance_window_s)}
        out = []
        for field, name, unit in (("p95()", "transaction.duration.p95", "ms"),
                                  ("failure_rate()", "transaction.failure_rate", "ratio")):
            if row.get(field) is None:
                continue
            out.append(Event(
                id=f"sentry:{self.cfg.organization}:perf:{self.project}:{tx}:{name}:{iso(end)}"[:256],
                source=Source.SENTRY, kind=EventKind.METRIC, timestamp=end, service=service,
                entity=Entity(project=self.project), severity=Severity.INFO,
                message=f"{name} of {tx}", metric=Metric(name=name, value=float(row[field]), unit=unit),
                attributes=attrs,
            ))
        return out


def _align(when: datetime, window: timedelta) -> datetime:
    step = int(window.total_seconds())
    return datetime.fromtimestamp(int(when.timestamp()) // step * step, when.tzinfo)


def sentry_streams(cfg: SentryConfig, api: HttpApi, mapper: ServiceMapper, clock: Clock) -> list[Stream]:
    """The streams the config enables, issues and performance once per project."""
    streams: list[Stream] = []
    for project in cfg.projects:
        if cfg.issues:
            streams.append(IssuesStream(cfg, project, api, mapper, clock))
        if cfg.performance:
            streams.append(PerformanceStream(cfg, project, api, mapper, clock))
    if cfg.releases:
        streams.append(ReleasesStream(cfg, api, mapper, clock))
    return streams


@asynccontextmanager
async def open_streams(
    cfg: SentryConfig, ctx: SourceContext, mapper: ServiceMapper, environ: Mapping[str, str]
) -> AsyncIterator[list[Stream]]:
    """The configured streams over one HTTP client (closed on exit); token from ``cfg.token_env``."""
    async with build_client(cfg.base_url, resolve_token(cfg, environ), timeout=cfg.timeout_s) as client:
        yield sentry_streams(cfg, HttpApi(client, ctx, sentry_rate_wait), mapper, ctx.clock)
