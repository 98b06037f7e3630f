"""Grafana: annotations (deploy markers → ``deploy``), firing alerts → ``alert``, queries → metrics/logs.

Every request carries the service-account bearer token and ``X-Grafana-Org-Id``.
Streams (cursor key ``grafana/NAME``):

* ``annotations`` — ``GET /api/annotations?from=&to=&limit=&type=annotation``
  (newest first).  A full page is followed by a query ending at its oldest
  time.  Cursor ``{since, since_ids, to, to_ids, newest, newest_ids}`` (epoch
  ms and the ids at those exact times, so a boundary annotation is read once).
  With ``dashboards`` on, ``GET /api/search?type=dash-db`` maps an
  annotation's dashboard tags (``service:NAME``) to its service.
* ``alerts`` — ``GET /api/alertmanager/grafana/api/v2/alerts?active=true``; one
  ``alert`` Event per (fingerprint, startsAt).  Cursor ``{firing: [keys]}``.
* ``query:NAME`` — ``POST /api/ds/query`` for each configured expression over
  ``(cursor.to, now - query_delay_s]``; frames via :mod:`.grafana_frames`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from producers.base import Batch, Rejected, SourceContext, Stream
from producers.config import GrafanaConfig, GrafanaQuery, resolve_token
from producers.cursors import Cursor
from producers.mapping import ServiceMapper
from producers.sources import HttpApi, build_client, compact_json
from producers.sources.grafana_frames import frame_events
from schemas.models import Entity, Event, EventKind, Severity, Source

_SEVERITY = {"critical": Severity.CRITICAL, "page": Severity.CRITICAL, "error": Severity.ERROR,
             "warning": Severity.WARNING, "info": Severity.INFO}


def _now_ms(ctx: SourceContext) -> int:
    return int(ctx.clock.now().timestamp() * 1000)


def annotation_event(item: dict[str, Any], cfg: GrafanaConfig, mapper: ServiceMapper,
                     dashboards: Mapping[str, list[str]]) -> Event:
    """One annotation; a deploy tag makes it a ``deploy`` Event (pure; raises KeyError/ValueError)."""
    tags = [str(t) for t in item.get("tags") or []]
    service = mapper.for_grafana(None, tags)
    if service == mapper.rules.default and item.get("dashboardUID"):
        service = mapper.for_grafana(None, dashboards.get(item["dashboardUID"], []))
    deploy = bool(set(tags) & set(cfg.deploy_tags))
    attributes = {"annotation_id": str(item["id"]), "tags": ",".join(tags),
                  "dashboard_uid": str(item.get("dashboardUID") or ""),
                  "panel_id": str(item.get("panelId") or ""),
                  "login": str(item.get("login") or ""), "time_end": str(item.get("timeEnd") or "")}
    return Event(
        id=f"grafana:annotation:{item['id']}", source=Source.GRAFANA,
        kind=EventKind.DEPLOY if deploy else EventKind.ANNOTATION,
        timestamp=datetime.fromtimestamp(int(item["time"]) / 1000, UTC), service=service,
        severity=Severity.INFO, message=str(item.get("text") or "")[:2000],
        attributes={k: v for k, v in attributes.items() if v},
    )


def alert_event(alert: dict[str, Any], mapper: ServiceMapper) -> Event:
    """One firing alert of the Grafana-managed Alertmanager (pure; raises KeyError/ValueError)."""
    labels = {str(k): str(v) for k, v in alert["labels"].items()}
    notes = {str(k): str(v) for k, v in (alert.get("annotations") or {}).items()}
    name = labels.get("alertname", "alert")
    summary = notes.get("summary") or notes.get("description") or ""
    return Event(
        id=f"grafana:alert:{alert['fingerprint']}:{alert['startsAt']}", source=Source.GRAFANA,
        kind=EventKind.ALERT, timestamp=alert["startsAt"], service=mapper.for_grafana(labels),
        entity=Entity(namespace=labels.get("namespace"), pod=labels.get("pod")),
        severity=_SEVERITY.get(labels.get("severity", "").lower(), Severity.ERROR),
        message=f"[FIRING] {name}" + (f": {summary}" if summary else ""),
        attributes={"fingerprint": str(alert["fingerprint"]),
                    "generator_url": str(alert.get("generatorURL") or ""),
                    **{f"label.{k}": v for k, v in labels.items()}},
    )


class AnnotationsStream:
    name = "annotations"

    def __init__(self, cfg: GrafanaConfig, api: HttpApi, mapper: ServiceMapper, page: int = 100) -> None:
        self.cfg, self.api, self.mapper, self.page = cfg, api, mapper, page

    async def _dashboards(self) -> dict[str, list[str]]:
        if not self.cfg.dashboards:
            return {}
        found = await self.api.get(self.name, "/api/search", {"type": "dash-db", "limit": 5000})
        items = found.body if isinstance(found.body, list) else []
        return {str(d["uid"]): [str(t) for t in d.get("tags") or []] for d in items if isinstance(d, dict)}

    async def fetch(self, cursor: Cursor | None) -> Batch:
        now = _now_ms(self.api.ctx)
        c = cursor or {"since": now - 3_600_000, "since_ids": [], "to": None, "to_ids": [],
                       "newest": None, "newest_ids": []}
        params: list[tuple[str, str]] = [("from", str(c["since"])), ("to", str(c["to"] or now)),
                                         ("limit", str(self.page)), ("type", "annotation")]
        params += [("tags", t) for t in self.cfg.annotation_tags]
        page = await self.api.get(self.name, "/api/annotations", params)
        items = [i for i in page.body if isinstance(i, dict)] if isinstance(page.body, list) else []
        dashboards = await self._dashboards()
        skip = {(c["since"], i) for i in c["since_ids"]} | {(c["to"], i) for i in c["to_ids"]}
        events: list[Event] = []
        rejected: list[Rejected] = []
        times: list[tuple[int, int]] = []
        for item in items:
            try:
                key = (int(item["time"]), int(item["id"]))
                times.append(key)
                if key not in skip:
                    events.append(annotation_event(item, self.cfg, self.mapper, dashboards))
            except (KeyError, TypeError, ValueError) as exc:
                rejected.append(Rejected(f"annotation not understood: {exc!r}", compact_json(item)))
        if not isinstance(page.body, list):
            rejected.append(Rejected("annotations response is not a JSON list", page.raw[:65536]))
        return self._advance(c, times, full=len(items) >= self.page, rejected=rejected, events=events)

    @staticmethod
    def _advance(c: Cursor, times: list[tuple[int, int]], full: bool, rejected: list[Rejected],
                 events: list[Event]) -> Batch:
        newest, newest_ids = c["newest"], list(c["newest_ids"])
        if times and (newest is None or max(times)[0] >= newest):
            top = max(times)[0]
            kept = set(newest_ids) if top == newest else set()
            newest_ids = sorted({i for t, i in times if t == top} | kept)
            newest = top
        if full and times:
            oldest = min(times)[0]
            to_ids = sorted({i for t, i in times if t == oldest})
            nxt = {**c, "to": oldest, "to_ids": to_ids, "newest": newest, "newest_ids": newest_ids}
            return Batch(events, rejected, nxt, more=True)
        if newest is None:
            return Batch(events, rejected, None)
        done = {"since": newest, "since_ids": newest_ids, "to": None, "to_ids": [], "newest": None,
                "newest_ids": []}
        return Batch(events, rejected, done)


class AlertsStream:
    name = "alerts"

    def __init__(self, api: HttpApi, mapper: ServiceMapper) -> None:
        self.api, self.mapper = api, mapper

    async def fetch(self, cursor: Cursor | None) -> Batch:
        params = {"active": "true", "silenced": "false", "inhibited": "false"}
        page = await self.api.get(self.name, "/api/alertmanager/grafana/api/v2/alerts", params)
        known = set((cursor or {}).get("firing", []))
        events: list[Event] = []
        rejected: list[Rejected] = []
        firing: set[str] = set()
        for alert in page.body if isinstance(page.body, list) else []:
            try:
                key = f"{alert['fingerprint']}@{alert['startsAt']}"
                firing.add(key)
                if key not in known:
                    events.append(alert_event(alert, self.mapper))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                rejected.append(Rejected(f"alert not understood: {exc!r}", compact_json(alert)))
        if not isinstance(page.body, list):
            return Batch((), [Rejected("alerts response is not a JSON list", page.raw[:65536])])
        return Batch(events, rejected, {"firing": sorted(firing)} if firing != known else None)


class QueryStream:
    def __init__(self, cfg: GrafanaConfig, query: GrafanaQuery, api: HttpApi, mapper: ServiceMapper) -> None:
        self.cfg, self.query, self.api, self.mapper = cfg, query, api, mapper
        self.name = f"query:{query.name}"

    async def fetch(self, cursor: Cursor | None) -> Batch:
        step_ms = self.cfg.query_step_s * 1000
        until = (_now_ms(self.api.ctx) - self.cfg.query_delay_s * 1000) // step_ms * step_ms
        after = int(cursor["to"]) if cursor else until - 10 * step_ms
        if until <= after:
            return Batch()
        q = self.query
        spec: dict[str, Any] = {"refId": "A", "datasource": {"uid": q.datasource_uid}, "expr": q.expr,
                                "intervalMs": step_ms, "maxDataPoints": 11_000}
        if q.kind == "loki":
            spec.update(queryType="range", maxLines=q.max_lines)
        body = {"queries": [spec], "from": str(after), "to": str(until)}
        page = await self.api.request(self.name, "POST", "/api/ds/query", body=body)
        events: list[Event] = []
        rejected: list[Rejected] = []
        try:
            result = page.body["results"]["A"]
            frames = result.get("frames") or []
        except (KeyError, TypeError, AttributeError) as exc:
            return Batch((), [Rejected(f"ds/query response not understood: {exc!r}", page.raw[:65536])])
        for frame in frames:
            try:
                events.extend(frame_events(q, frame, self.mapper, after, until))
            except (KeyError, TypeError, ValueError, StopIteration, IndexError) as exc:
                rejected.append(Rejected(f"data frame not understood: {exc!r}", compact_json(frame)))
        return Batch(events, rejected, {"to": until})


@asynccontextmanager
async def open_streams(
    cfg: GrafanaConfig, ctx: SourceContext, mapper: ServiceMapper, environ: Mapping[str, str]
) -> AsyncIterator[list[Stream]]:
    """The configured streams over one HTTP client (closed on exit); token from ``cfg.token_env``."""
    headers = {"X-Grafana-Org-Id": str(cfg.org_id)}
    async with build_client(cfg.base_url, resolve_token(cfg, environ), headers, cfg.timeout_s) as client:
        api = HttpApi(client, ctx)
        streams: list[Stream] = []
        if cfg.annotations:
            streams.append(AnnotationsStream(cfg, api, mapper))
        if cfg.alerts:
            streams.append(AlertsStream(api, mapper))
        streams.extend(QueryStream(cfg, q, api, mapper) for q in cfg.queries)
        yield streams
