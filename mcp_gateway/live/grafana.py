"""Grafana live tools over the poller's httpx client (token and ``X-Grafana-Org-Id`` as it sends them).

Endpoints: ``GET /api/search`` (dashboards), ``GET /api/dashboards/uid/{uid}``
(panels and their queries), ``GET /api/annotations``, and for a datasource query
``GET /api/datasources/uid/{uid}`` (only Prometheus and Loki datasources are
queried: their queries cannot write) then ``POST /api/ds/query``, Grafana's read
API for running a query.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from mcp_gateway.live.errors import Rejected, for_status
from mcp_gateway.live.guard import SourceGuard
from mcp_gateway.live.http import read_json
from mcp_gateway.live.shape import (
    Compact,
    Listing,
    Untrusted,
    add_tools,
    fence,
    fence_tail,
    fit,
    ident,
    listing,
)
from producers.config import GrafanaConfig, resolve_token
from producers.sources import build_client

MaxItems = Annotated[int, Field(ge=1, le=200)]
Minutes = Annotated[int, Field(ge=1, le=43200)]
QUERYABLE = ("prometheus", "loki")
_TAG = re.compile(r"^[^\x00-\x1f]{1,100}$")


class Dashboard(Compact):
    uid: str
    title: str
    folder: str | None
    tags: list[str]


class DashboardList(Listing[Dashboard]):
    pass


class Panel(Compact):
    id: int | None
    title: str
    type: str
    datasource: str | None
    queries: list[str]


class PanelList(Listing[Panel]):
    dashboard: str


class Annotation(Compact):
    id: int
    time: str
    tags: list[str]
    dashboard_uid: str | None
    text: Untrusted


class AnnotationList(Listing[Annotation]):
    pass


class Series(Compact):
    labels: dict[str, str]
    points: int
    min: float | None
    max: float | None
    last: float | None
    values: list[tuple[int, float | None]] = Field(description="[epoch ms, value]; 60 at most, sampled.")


class QueryResult(Listing[Series]):
    datasource_type: str
    log_lines: Untrusted | None = None


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def _annotation(a: dict[str, Any]) -> Annotation:
    return Annotation(id=int(a["id"]), time=_iso(int(a["time"])), tags=[str(t) for t in a.get("tags") or []],
                      dashboard_uid=a.get("dashboardUID") or None, text=fence(str(a.get("text") or ""), 1000))


def _panels(panels: list[Any]) -> list[Panel]:
    out: list[Panel] = []
    for p in panels:
        if not isinstance(p, dict):
            continue
        if p.get("type") == "row":
            out.extend(_panels(p.get("panels") or []))
            continue
        ds = p.get("datasource")
        queries = []
        for t in p.get("targets") or []:
            text = t.get("expr") or t.get("query") or t.get("rawSql") or t.get("expression") or ""
            queries.append(f"{t.get('refId', '?')}: {str(text)[:500]}")
        out.append(Panel(id=p.get("id"), title=str(p.get("title") or ""), type=str(p.get("type") or ""),
                         datasource=str(ds.get("uid")) if isinstance(ds, dict) else (str(ds) if ds else None),
                         queries=queries))
    return out


def _series(frame: dict[str, Any]) -> list[Series]:
    fields = (frame.get("schema") or {}).get("fields") or []
    columns = (frame.get("data") or {}).get("values") or []
    times: list[Any] = next((columns[i] for i, f in enumerate(fields) if f.get("type") == "time"), [])
    out = []
    for i, f in enumerate(fields):
        if f.get("type") != "number" or i >= len(columns):
            continue
        values = columns[i]
        pairs = list(zip(times, values, strict=False))
        step = max(1, len(pairs) // 60)
        known = [v for v in values if v is not None]
        out.append(Series(labels={str(k): str(v) for k, v in (f.get("labels") or {}).items()},
                          points=len(pairs), min=min(known, default=None), max=max(known, default=None),
                          last=known[-1] if known else None,
                          values=[(int(t), v) for t, v in pairs[::step]][:60]))
    return out


def _lines(frame: dict[str, Any]) -> list[str]:
    fields = (frame.get("schema") or {}).get("fields") or []
    columns = (frame.get("data") or {}).get("values") or []
    names = [f.get("name") for f in fields]
    if "Line" not in names or "Time" not in names:
        return []
    times, lines = columns[names.index("Time")], columns[names.index("Line")]
    return [f"{_iso(int(t))} {line}" for t, line in zip(times, lines, strict=False)]


def register(server: MCPServer, cfg: GrafanaConfig, guard: SourceGuard, max_chars: int,
             environ: Mapping[str, str]) -> set[str]:
    """Register the ``grafana_*`` tools.  A fresh client per upstream call: nothing to close."""
    token, headers = resolve_token(cfg, environ), {"X-Grafana-Org-Id": str(cfg.org_id)}

    async def call(what: str, path: str, params: Any = None, body: Any = None) -> Any:
        async with build_client(cfg.base_url, token, headers, cfg.timeout_s) as client:
            return await read_json(client, "grafana", what, path, params,
                                   method="POST" if body is not None else "GET", body=body)

    async def grafana_search_dashboards(query: Annotated[str, Field(max_length=200)] | None = None,
                                        tag: str | None = None, max_items: MaxItems = 25) -> DashboardList:
        """Find dashboards by title words and/or tag."""
        if tag is not None and not _TAG.fullmatch(tag):
            raise Rejected("tag: 1-100 printable characters")

        async def fetch() -> DashboardList:
            params: dict[str, str | int] = {"type": "dash-db", "limit": max_items}
            params.update({k: v for k, v in (("query", query), ("tag", tag)) if v})
            body = await call("dashboard search", "/api/search", params)
            found = [Dashboard(uid=str(d.get("uid")), title=str(d.get("title") or ""),
                               folder=d.get("folderTitle"), tags=[str(t) for t in d.get("tags") or []])
                     for d in (body if isinstance(body, list) else []) if isinstance(d, dict)]
            return listing(DashboardList, found, max_items, max_chars)

        args = {"q": query, "t": tag, "n": max_items}
        return await guard.run("grafana_search_dashboards", args, DashboardList, fetch)

    async def grafana_dashboard_panels(uid: str, max_items: MaxItems = 50) -> PanelList:
        """A dashboard's panels with their datasource and queries (PromQL, LogQL…)."""
        ident("uid", uid)

        async def fetch() -> PanelList:
            body = await call(f"dashboard {uid}", f"/api/dashboards/uid/{uid}")
            dash = (body or {}).get("dashboard") or {}
            panels = _panels(dash.get("panels") or [])
            kept, omitted, counts = fit(panels, max_items, max_chars, key=lambda p: p.type)
            return PanelList(dashboard=str(dash.get("title") or uid), items=kept, total=len(panels),
                             omitted=omitted, counts=counts)

        return await guard.run("grafana_dashboard_panels", {"u": uid, "n": max_items}, PanelList, fetch)

    async def grafana_annotations(since_minutes: Minutes = 360, tags: list[str] | None = None,
                                  dashboard_uid: str | None = None,
                                  max_items: MaxItems = 50) -> AnnotationList:
        """Annotations (deploys, incidents, notes), newest first; filter by tags (all must match)."""
        for t in tags or []:
            if not _TAG.fullmatch(t):
                raise Rejected("tags: 1-100 printable characters each")
        if dashboard_uid:
            ident("uid", dashboard_uid)

        async def fetch() -> AnnotationList:
            now = int(datetime.now(UTC).timestamp() * 1000)
            params: list[tuple[str, str | int]] = [("from", now - since_minutes * 60_000), ("to", now),
                                                   ("limit", max_items), ("type", "annotation")]
            params += [("tags", t) for t in tags or []]
            if dashboard_uid:
                params.append(("dashboardUID", dashboard_uid))
            body = await call("annotations", "/api/annotations", params)
            items = [_annotation(a) for a in (body if isinstance(body, list) else []) if isinstance(a, dict)]
            return listing(AnnotationList, items, max_items, max_chars, key=lambda a: ",".join(a.tags))

        args = {"m": since_minutes, "t": sorted(tags or []), "d": dashboard_uid, "n": max_items}
        return await guard.run("grafana_annotations", args, AnnotationList, fetch)

    async def grafana_query(datasource_uid: str, expr: Annotated[str, Field(min_length=1, max_length=2000)],
                            since_minutes: Minutes = 60, step_s: Annotated[int, Field(ge=1, le=86400)] = 60,
                            max_items: MaxItems = 20) -> QueryResult:
        """Run a PromQL or LogQL query on a Prometheus/Loki datasource over the last minutes."""
        ident("uid", datasource_uid)

        async def fetch() -> QueryResult:
            ds = await call(f"datasource {datasource_uid}", f"/api/datasources/uid/{datasource_uid}")
            kind = str((ds or {}).get("type") or "")
            if kind not in QUERYABLE:
                raise Rejected(f"datasource {datasource_uid} is {kind or 'of unknown type'}; "
                               f"only {' and '.join(QUERYABLE)} datasources are queried")
            now = int(datetime.now(UTC).timestamp() * 1000)
            spec: dict[str, Any] = {"refId": "A", "datasource": {"uid": datasource_uid}, "expr": expr,
                                    "intervalMs": step_s * 1000, "maxDataPoints": 1000}
            if kind == "loki":
                spec.update(queryType="range", maxLines=1000)
            body = {"queries": [spec], "from": str(now - since_minutes * 60_000), "to": str(now)}
            result = await call(f"query on {datasource_uid}", "/api/ds/query", body=body)
            answer = ((result or {}).get("results") or {}).get("A") or {}
            if answer.get("error"):  # a failed query inside a 200/207 answer
                status, message = int(answer.get("status") or 400), str(answer["error"])
                raise for_status("grafana", f"the query on {datasource_uid}", status, message)
            frames = answer.get("frames") or []
            series = [s for f in frames for s in _series(f)]
            lines = [line for f in frames for line in _lines(f)]
            kept, omitted, _ = fit(series, max_items, max_chars // 2)
            text = fence_tail(lines, max_chars // 2)[0] if lines else None
            return QueryResult(datasource_type=kind, log_lines=text, items=kept, total=len(series),
                               omitted=omitted)

        args = {"d": datasource_uid, "e": expr, "m": since_minutes, "s": step_s, "n": max_items}
        return await guard.run("grafana_query", args, QueryResult, fetch)

    tools: list[Callable[..., Any]] = [grafana_search_dashboards, grafana_dashboard_panels,
                                       grafana_annotations, grafana_query]
    return add_tools(server, tools)

