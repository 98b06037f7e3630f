"""A fake Sentry web API (``/api/0``) serving the documented response shapes.

Issues are served newest ``lastSeen`` first, filtered by ``lastSeen:>ISO`` in
``query``, paged by ``limit`` with Sentry's ``Link`` header
(``<url>; rel="next"; results="true"; cursor="0:100:0"``).  Every request
needs ``Authorization: Bearer TOKEN``.  The organization and project detail
endpoints answer for ``org`` and the slugs in ``projects``.

Error shapes, as https://docs.sentry.io/api/ documents them:

* 404 ``{"detail": "The requested resource does not exist"}`` for an unknown
  issue, project or event (an issue's latest event deleted or not stored yet).
* Rate limits (https://docs.sentry.io/api/ratelimits/): every response carries
  ``X-Sentry-Rate-Limit-Limit``, ``-Remaining``, ``-Reset`` (UTC epoch seconds
  when the fixed window ends), ``-ConcurrentLimit`` and ``-ConcurrentRemaining``;
  a caller over its budget for an endpoint gets 429 with ``{"detail": "You are
  attempting to use this endpoint too frequently. Limit is N requests in W
  seconds"}`` and *no* ``Retry-After``.  Set ``rate_limit = (N, W)`` to enforce
  it per endpoint (numeric path segments are one endpoint) on the clock ``now``.
* Pagination (https://docs.sentry.io/api/pagination/): ``Link`` holds a
  ``rel="previous"`` and a ``rel="next"`` entry, each with ``results="true|false"``
  and ``cursor="VALUE:OFFSET:IS_PREV"``; a ``next`` with ``results="false"`` ends it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from tests.fakes import FakeHttpServer, Reply, Request

NOT_FOUND = {"detail": "The requested resource does not exist"}

_SEEN = re.compile(r"lastSeen:>(\S+)")


def make_issue(issue_id: str, project: str, last_seen: str, **extra: Any) -> dict[str, Any]:
    """An issue as ``GET /api/0/projects/{org}/{project}/issues/`` lists it."""
    return {
        "id": issue_id,
        "shortId": f"{project.upper()}-{issue_id}",
        "title": "KeyError: 'currency'",
        "culprit": "payments.api.charge in charge",
        "level": "error",
        "status": "unresolved",
        "count": "12",
        "userCount": 3,
        "firstSeen": "2024-05-01T11:00:00.000000Z",
        "lastSeen": last_seen,
        "permalink": f"https://sentry.example.com/organizations/acme/issues/{issue_id}/",
        "project": {"id": "2", "name": project.title(), "slug": project},
        "metadata": {"type": "KeyError", "value": "'currency'", "filename": "payments/api/charge.py"},
        "type": "error",
        "platform": "python",
        "logger": None,
        "isUnhandled": True,
        **extra,
    }


def make_latest_event(event_id: str, date: str, release: str | None = "payments@2.4.1") -> dict[str, Any]:
    """The documented shape of ``GET /api/0/organizations/{org}/issues/{id}/events/latest/``."""
    frames = [
        {
            "filename": "django/core/handlers/base.py",
            "function": "get_response",
            "lineNo": 181,
            "module": "django.core.handlers.base",
            "inApp": False,
            "absPath": "/usr/lib/django/base.py",
        },
        {
            "filename": "payments/api/views.py",
            "function": "post",
            "lineNo": 41,
            "module": "payments.api.views",
            "inApp": True,
            "absPath": "/app/payments/api/views.py",
        },
        {
            "filename": "payments/api/charge.py",
            "function": "charge",
            "lineNo": 88,
            "module": "payments.api.charge",
            "inApp": True,
            "absPath": "/app/payments/api/charge.py",
        },
    ]
    return {
        "id": event_id,
        "eventID": event_id,
        "groupID": "1",
        "dateCreated": date,
        "dateReceived": date,
        "title": "KeyError: 'currency'",
        "message": "",
        "platform": "python",
        "type": "error",
        "tags": [{"key": "environment", "value": "production"}, {"key": "level", "value": "error"}],
        "release": {"version": release} if release else None,
        "entries": [
            {
                "type": "exception",
                "data": {
                    "values": [
                        {
                            "type": "KeyError",
                            "value": "'currency'",
                            "mechanism": {"type": "generic", "handled": False},
                            "stacktrace": {"frames": frames},
                        }
                    ]
                },
            }
        ],
    }


def make_release(
    version: str,
    created: str,
    projects: list[str],
    deployed: str | None = None,
    environment: str = "production",
) -> dict[str, Any]:
    """A release as ``GET /api/0/organizations/{org}/releases/`` lists it."""
    return {
        "version": version,
        "shortVersion": version,
        "ref": "6ba09a7c53235ee8a8fa5ee4c1ca8ca886e7fdbb",
        "url": None,
        "dateCreated": created,
        "dateReleased": None,
        "newGroups": 1,
        "projects": [{"slug": p, "name": p.title(), "id": i} for i, p in enumerate(projects, 1)],
        "lastDeploy": {
            "id": "5",
            "environment": environment,
            "dateStarted": None,
            "dateFinished": deployed,
            "name": None,
            "url": None,
        }
        if deployed
        else None,
    }


class FakeSentry(FakeHttpServer):
    def __init__(self, token: str = "sntrys-test", org: str = "acme") -> None:
        super().__init__()
        self.token, self.org = token, org
        self.issues: list[dict[str, Any]] = []
        self.latest: dict[str, dict[str, Any]] = {}
        self.releases: list[dict[str, Any]] = []
        self.discover: dict[str, list[dict[str, Any]]] = {}
        self.issue_events: dict[str, list[dict[str, Any]]] = {}  # issue id → its events, newest first
        self.projects: set[str] = {"payments", "checkout"}  # what the project detail endpoint knows
        self.rate_limit: tuple[int, int] = (1000, 1)  # (requests, window seconds) per endpoint
        self.concurrent_limit = 25
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)
        self._windows: dict[tuple[str, int], int] = {}
        self._in_flight = 0
        self._count_lock = threading.Lock()

    def handle(self, request: Request) -> Reply:
        endpoint = re.sub(r"/\d+/", "/{id}/", request.path)
        limit, window = self.rate_limit
        now = self.now().timestamp()
        start = int(now) // window * window
        with self._count_lock:
            used = self._windows[(endpoint, start)] = self._windows.get((endpoint, start), 0) + 1
            self._in_flight += 1
            concurrent_left = max(0, self.concurrent_limit - self._in_flight)
        try:
            if used > limit:
                detail = (f"You are attempting to use this endpoint too frequently. Limit is {limit} "
                          f"requests in {window} seconds")
                reply = Reply(429, {"detail": detail})
            else:
                reply = self._route(request)
        finally:
            with self._count_lock:
                self._in_flight -= 1
        reply.headers.update({
            "X-Sentry-Rate-Limit-Limit": str(limit),
            "X-Sentry-Rate-Limit-Remaining": str(max(0, limit - used)),
            "X-Sentry-Rate-Limit-Reset": str(start + window),
            "X-Sentry-Rate-Limit-ConcurrentLimit": str(self.concurrent_limit),
            "X-Sentry-Rate-Limit-ConcurrentRemaining": str(concurrent_left),
        })
        return reply

    def _route(self, request: Request) -> Reply:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return Reply(401, {"detail": "Invalid token"})
        parts = request.path.strip("/").split("/")
        if parts[:3] == ["api", "0", "projects"] and len(parts) == 6 and parts[5] == "issues":
            return self._issues(request, parts[4])
        if parts[:4] == ["api", "0", "projects", self.org] and len(parts) == 5:
            if parts[4] not in self.projects:
                return Reply(404, NOT_FOUND)
            return Reply(200, {"id": "2", "slug": parts[4], "name": parts[4].title(), "status": "active"})
        if parts == ["api", "0", "organizations", self.org]:
            return Reply(200, {"id": "1", "slug": self.org, "name": self.org.title(),
                               "status": {"id": "active", "name": "active"}})
        if parts[:4] == ["api", "0", "organizations", self.org] and len(parts) >= 5:
            rest = parts[4:]
            if rest[0] == "issues" and rest[2:] == ["events", "latest"]:
                latest = self.latest.get(rest[1])
                return Reply(200, latest) if latest else Reply(404, NOT_FOUND)
            if rest == ["releases"]:
                items = sorted(self.releases, key=lambda r: r["dateCreated"], reverse=True)
                return self._page(request, items, "per_page")
            if rest[0] == "issues" and len(rest) == 2:  # issue details
                found = [i for i in self.issues if i["id"] == rest[1]]
                return Reply(200, found[0]) if found else Reply(404, NOT_FOUND)
            if rest[0] == "issues" and rest[2:] == ["events"]:  # an issue's events, newest first
                return self._page(request, self.issue_events.get(rest[1], []), "per_page")
            if rest[0] == "releases" and len(rest) == 2:  # release details (?health=1 adds healthData)
                found = [r for r in self.releases if r["version"] == unquote(rest[1])]
                return Reply(200, found[0]) if found else Reply(404, NOT_FOUND)
            if rest == ["events"]:
                project = (request.param("query") or "").rsplit("project:", 1)[-1]
                return Reply(
                    200,
                    {
                        "data": self.discover.get(project, []),
                        "meta": {
                            "fields": {
                                "transaction": "string",
                                "p95()": "duration",
                                "failure_rate()": "percentage",
                                "count()": "integer",
                            },
                            "units": {"p95()": "millisecond"},
                        },
                    },
                )
        return Reply(404, NOT_FOUND)

    def _issues(self, request: Request, project: str) -> Reply:
        items = [i for i in self.issues if i["project"]["slug"] == project]
        match = _SEEN.search(request.param("query") or "")
        if match:
            since = datetime.fromisoformat(match[1].replace("Z", "+00:00"))
            items = [i for i in items if datetime.fromisoformat(i["lastSeen"].replace("Z", "+00:00")) > since]
        items.sort(key=lambda i: i["lastSeen"], reverse=True)
        return self._page(request, items, "limit")

    def _page(self, request: Request, items: list[dict[str, Any]], size_param: str) -> Reply:
        size = int(request.param(size_param) or 100)
        offset = int((request.param("cursor") or "0:0:0").split(":")[1])
        page = items[offset : offset + size]
        has_next = offset + size < len(items)
        base = f"{self.url}{request.path}"
        nxt, prv = f"0:{offset + size}:0", f"0:{max(0, offset - size)}:1"
        link = (
            f'<{base}?cursor={prv}>; rel="previous"; results="{str(offset > 0).lower()}"; cursor="{prv}", '
            f'<{base}?cursor={nxt}>; rel="next"; results="{str(has_next).lower()}"; cursor="{nxt}"'
        )
        return Reply(200, page, {"Link": link})
