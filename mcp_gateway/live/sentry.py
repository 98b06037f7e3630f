"""Sentry live tools over the poller's httpx client (:func:`producers.sources.build_client`).

The organization is the config's; projects are limited to its ``projects``.
Endpoints (all GET, relative to ``base_url``):

* issues — ``/api/0/projects/{org}/{project}/issues/?query=&sort=&limit=``
* one issue — ``/api/0/organizations/{org}/issues/{id}/`` and ``…/events/latest/``
* its events — ``/api/0/organizations/{org}/issues/{id}/events/``
* release health — ``/api/0/organizations/{org}/releases/{version}/?health=1``
* a transaction's performance — Discover, ``/api/0/organizations/{org}/events/``
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal
from urllib.parse import quote

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from mcp_gateway.live.errors import Rejected
from mcp_gateway.live.guard import SourceGuard
from mcp_gateway.live.http import read_json
from mcp_gateway.live.shape import Compact, Listing, Untrusted, add_tools, fence, ident, listing
from producers.config import SentryConfig, resolve_token
from producers.sources import build_client

MaxItems = Annotated[int, Field(ge=1, le=100)]
_TRANSACTION = re.compile(r'^[^"\\\x00-\x1f]{1,200}$')


class Issue(Compact):
    id: str
    short_id: str
    project: str
    title: Untrusted
    level: str
    status: str
    count: int
    users: int
    first_seen: str | None
    last_seen: str | None
    permalink: str | None = None


class IssueList(Listing[Issue]):
    pass


class Frame(Compact):
    where: str
    in_app: bool


class IssueDetail(Issue):
    culprit: str | None
    event_id: str | None
    release: str | None
    tags: dict[str, str]
    exception: Untrusted | None
    frames: list[Frame] = Field(description="Innermost first.")


class SentryEvent(Compact):
    event_id: str
    time: str | None
    message: Untrusted
    tags: dict[str, str]


class EventList(Listing[SentryEvent]):
    pass


class ProjectHealth(Compact):
    project: str
    crash_free_sessions: float | None
    crash_free_users: float | None
    total_sessions: int | None
    sessions_crashed: int | None
    adoption: float | None


class ReleaseHealth(Compact):
    version: str
    created: str | None
    released: str | None
    last_deploy: str | None
    new_issues: int | None
    projects: list[ProjectHealth]


class TransactionSummary(Compact):
    transaction: str
    project: str
    period_minutes: int
    count: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    failure_rate: float | None
    tpm: float | None


def _issue(item: dict[str, Any]) -> Issue:
    return Issue(
        id=str(item["id"]), short_id=str(item.get("shortId") or ""),
        project=str((item.get("project") or {}).get("slug") or ""), title=fence(str(item.get("title")), 300),
        level=str(item.get("level") or ""), status=str(item.get("status") or ""),
        count=int(item.get("count") or 0), users=int(item.get("userCount") or 0),
        first_seen=item.get("firstSeen"), last_seen=item.get("lastSeen"), permalink=item.get("permalink"),
    )


def _tags(event: dict[str, Any], limit: int = 20) -> dict[str, str]:
    pairs = [(str(t["key"]), str(t.get("value"))[:200]) for t in event.get("tags") or []
             if isinstance(t, dict) and "key" in t]
    return dict(pairs[:limit])


def _where(f: dict[str, Any]) -> str:
    return f"{f.get('filename') or f.get('module')}:{f.get('lineNo')} {f.get('function')}()"


def _exception(latest: dict[str, Any]) -> tuple[str | None, list[Frame]]:
    for entry in latest.get("entries") or []:
        if isinstance(entry, dict) and entry.get("type") == "exception":
            values = (entry.get("data") or {}).get("values") or []
            if values:
                exc = values[-1]
                frames = list(reversed((exc.get("stacktrace") or {}).get("frames") or []))[:30]
                return fence(f"{exc.get('type')}: {exc.get('value')}", 1000), [
                    Frame(where=_where(f), in_app=bool(f.get("inApp")))
                    for f in frames if isinstance(f, dict)]
    return None, []


def _ms(row: dict[str, Any], field: str) -> float | None:
    value = row.get(field)
    return round(float(value), 1) if value is not None else None


def register(server: MCPServer, cfg: SentryConfig, guard: SourceGuard, max_chars: int,
             environ: Mapping[str, str]) -> set[str]:
    """Register the ``sentry_*`` tools.  A fresh client per upstream call: nothing to close."""
    org, token = cfg.organization, resolve_token(cfg, environ)

    async def get(what: str, path: str, params: Any = None) -> Any:
        async with build_client(cfg.base_url, token, timeout=cfg.timeout_s) as client:
            return await read_json(client, "sentry", what, path, params)

    def project_of(project: str | None) -> str:
        if project is None:
            return cfg.projects[0]
        if project not in cfg.projects:
            raise Rejected(f"project {project[:80]!r} is not configured; allowed: {', '.join(cfg.projects)}")
        return project

    async def issue(issue_id: str) -> dict[str, Any]:
        body = await get(f"issue {issue_id}", f"/api/0/organizations/{org}/issues/{issue_id}/")
        slug = (body.get("project") or {}).get("slug")
        if slug not in cfg.projects:
            raise Rejected(f"issue {issue_id} belongs to project {slug!r}, which is not configured")
        return dict(body)

    async def sentry_search_issues(query: Annotated[str, Field(max_length=500)] = "is:unresolved",
                                   project: str | None = None,
                                   sort: Literal["date", "new", "freq", "user"] = "date",
                                   max_items: MaxItems = 25) -> IssueList:
        """Search issues (Sentry syntax, e.g. `is:unresolved level:error`); all configured projects
        by default."""
        slugs = [project_of(project)] if project else list(cfg.projects[:5])

        async def fetch() -> IssueList:
            params: dict[str, str | int] = {"query": query, "sort": sort, "limit": max_items}
            if cfg.environment:
                params["environment"] = cfg.environment
            issues: list[Issue] = []
            for slug in slugs:
                body = await get(f"issues of {slug}", f"/api/0/projects/{org}/{slug}/issues/", params)
                issues += [_issue(i) for i in body if isinstance(i, dict)] if isinstance(body, list) else []
            if len(slugs) > 1 and sort == "date":
                issues.sort(key=lambda i: i.last_seen or "", reverse=True)
            return listing(IssueList, issues, max_items, max_chars, key=lambda i: i.level)

        args = {"q": query, "p": slugs, "s": sort, "n": max_items}
        return await guard.run("sentry_search_issues", args, IssueList, fetch)

    async def sentry_get_issue(issue_id: str) -> IssueDetail:
        """One issue with its latest event: exception, stack frames (innermost first), release, tags."""
        iid = ident("issue_id", issue_id)

        async def fetch() -> IssueDetail:
            body = await issue(iid)
            path = f"/api/0/organizations/{org}/issues/{iid}/events/latest/"
            latest = await get(f"latest event of {iid}", path)
            latest = latest if isinstance(latest, dict) else {}
            exception, frames = _exception(latest)
            release = (latest.get("release") or {}).get("version")
            return IssueDetail(**_issue(body).model_dump(), culprit=body.get("culprit"),
                               event_id=latest.get("eventID"), release=release, tags=_tags(latest),
                               exception=exception, frames=frames)

        return await guard.run("sentry_get_issue", {"i": iid}, IssueDetail, fetch)

    async def sentry_issue_events(issue_id: str, max_items: MaxItems = 20) -> EventList:
        """An issue's events, newest first, with their message and tags."""
        iid = ident("issue_id", issue_id)

        async def fetch() -> EventList:
            await issue(iid)
            body = await get(f"events of {iid}", f"/api/0/organizations/{org}/issues/{iid}/events/",
                             {"per_page": max_items})
            events = [SentryEvent(event_id=str(e.get("eventID") or e.get("id")), time=e.get("dateCreated"),
                                  message=fence(str(e.get("message") or e.get("title") or ""), 1000),
                                  tags=_tags(e, 10))
                      for e in (body if isinstance(body, list) else []) if isinstance(e, dict)]
            return listing(EventList, events, max_items, max_chars)

        return await guard.run("sentry_issue_events", {"i": iid, "n": max_items}, EventList, fetch)

    async def sentry_release_health(version: str) -> ReleaseHealth:
        """A release's health per project over 24 h: crash-free sessions/users, adoption."""
        ident("release", version)

        async def fetch() -> ReleaseHealth:
            path = f"/api/0/organizations/{org}/releases/{quote(version, safe='')}/"
            body = await get(f"release {version}", path, {"health": 1, "summaryStatsPeriod": "24h"})
            projects = []
            for p in body.get("projects") or []:
                if p.get("slug") not in cfg.projects:
                    continue
                h = p.get("healthData") or {}
                projects.append(ProjectHealth(
                    project=str(p["slug"]), crash_free_sessions=h.get("crashFreeSessions"),
                    crash_free_users=h.get("crashFreeUsers"), total_sessions=h.get("totalSessions"),
                    sessions_crashed=h.get("sessionsCrashed"), adoption=h.get("adoption")))
            deploy = body.get("lastDeploy") or {}
            return ReleaseHealth(
                version=str(body.get("version") or version), created=body.get("dateCreated"),
                released=body.get("dateReleased"),
                last_deploy=f"{deploy.get('environment')} {deploy.get('dateFinished')}" if deploy else None,
                new_issues=body.get("newGroups"), projects=projects)

        return await guard.run("sentry_release_health", {"v": version}, ReleaseHealth, fetch)

    async def sentry_transaction_summary(transaction: str, project: str | None = None,
                                         period_minutes: Annotated[int, Field(ge=5, le=20160)] = 60
                                         ) -> TransactionSummary:
        """Performance of one transaction: count, p50/p95/p99 duration, failure rate, throughput."""
        if not _TRANSACTION.fullmatch(transaction):
            raise Rejected("transaction: 1-200 characters, no quotes, backslashes or control characters")
        slug = project_of(project)

        async def fetch() -> TransactionSummary:
            fields = ["transaction", "count()", "p50()", "p95()", "p99()", "failure_rate()", "tpm()"]
            params = [("field", f) for f in fields] + [
                ("query", f'event.type:transaction transaction:"{transaction}" project:{slug}'),
                ("statsPeriod", f"{period_minutes}m"), ("per_page", "10")]
            body = await get(f"performance of {transaction}", f"/api/0/organizations/{org}/events/", params)
            rows = body.get("data") if isinstance(body, dict) else None
            row: dict[str, Any] = next((r for r in rows or [] if r.get("transaction") == transaction), {})
            return TransactionSummary(
                transaction=transaction, project=slug, period_minutes=period_minutes,
                count=int(row.get("count()") or 0), p50_ms=_ms(row, "p50()"), p95_ms=_ms(row, "p95()"),
                p99_ms=_ms(row, "p99()"), failure_rate=row.get("failure_rate()"), tpm=_ms(row, "tpm()"))

        args = {"t": transaction, "p": slug, "m": period_minutes}
        return await guard.run("sentry_transaction_summary", args, TransactionSummary, fetch)

    tools: list[Callable[..., Any]] = [sentry_search_issues, sentry_get_issue, sentry_issue_events,
                                       sentry_release_health, sentry_transaction_summary]
    return add_tools(server, tools)
