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
  ``(cursor.to, now - query_delay_s]``; frames via :mod:`.grafana_frames`.  A
  failing query and a truncated Loki page are handled by :class:`QueryStream`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from producers.base import Batch, Rejected, SourceContext, Stream
from producers.config import GrafanaConfig, GrafanaQuery, resolve_token
from producers.cursors import Cursor
from producers.mapping import ServiceMapper
from producers.sources import AccessDenied, ApiRejected, HttpApi, build_client, compact_json
from producers.sources.grafana_frames import frame_events, log_row_times
from producers.sources.objects import Failure, ObjectGuard, Verdict, failure_for_status, failure_of
from schemas.models import Entity, Event, EventKind, Severity, Source

log = logging.getLogger(__name__)

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
    """One configured expression, read window by window; the cursor ``{to}`` is the window's end.

    *Per-query errors.*  Grafana answers a query that failed in its datasource with
    ``results.A.error`` and ``results.A.status`` — in an HTTP 400 by default, a 207
    with the ``datasourceQueryMultiStatus`` feature, a 200 from some datasources — and
    a request it cannot run at all with 400, 403 ("Access denied to data source") or
    404 ("Data source not found").  Each holds the window (the cursor does not move)
    and is retried next cycle, up to ``object_attempts`` times; then the window is
    dead-lettered with Grafana's error (``object_parked``), the cursor moves past it
    and the query is parked for ``park_s``.  Nothing is dropped without a dead letter.

    *Loki truncation.*  Loki returns at most ``maxLines`` lines per query, so a page
    with ``max_lines`` rows may have lost the rest of its window.  Log queries ask
    ``direction: forward`` (the oldest lines first); a full page moves the cursor to
    just before its newest row's millisecond and the next page reads on (rows of
    that millisecond come twice and are dropped by id), counted in
    ``seismo_poller_truncated_total``.  Only when one millisecond alone holds more
    than ``max_lines`` lines is the rest of it given up, as a ``truncated`` dead letter.
    """

    def __init__(self, cfg: GrafanaConfig, query: GrafanaQuery, api: HttpApi, mapper: ServiceMapper) -> None:
        self.cfg, self.query, self.api, self.mapper = cfg, query, api, mapper
        self.name = f"query:{query.name}"
        self.guard = ObjectGuard(api.ctx, self.name)

    async def fetch(self, cursor: Cursor | None) -> Batch:
        step_ms = self.cfg.query_step_s * 1000
        until = (_now_ms(self.api.ctx) - self.cfg.query_delay_s * 1000) // step_ms * step_ms
        after = int(cursor["to"]) if cursor else until - 10 * step_ms
        if until <= after or self.guard.parked(self.query.name):
            return Batch()
        q = self.query
        spec: dict[str, Any] = {"refId": "A", "datasource": {"uid": q.datasource_uid}, "expr": q.expr,
                                "intervalMs": step_ms, "maxDataPoints": 11_000}
        start, end = after, until
        if q.kind == "loki":
            spec.update(queryType="range", maxLines=q.max_lines, direction="forward")
            # Loki's start is inclusive and its end exclusive, in nanoseconds: ask for the
            # milliseconds (after, until] exactly, so a page never starts with lines already read.
            start, end = after + 1, until + 1
        body = {"queries": [spec], "from": str(start), "to": str(end)}
        try:
            page = await self.api.request(self.name, "POST", "/api/ds/query", body=body, accept=(400, 207))
        except (ApiRejected, AccessDenied) as exc:
            failure = failure_of(exc)
            if failure is None:
                raise
            return self._failed(failure, str(exc), until, b"")
        try:
            result = page.body["results"]["A"]
            frames = result.get("frames") or []
        except (KeyError, TypeError, AttributeError) as exc:
            if page.status >= 400:
                return self._failed(Failure.REJECTED, f"{page.status}: {page.raw[:200]!r}", until, page.raw)
            return Batch((), [Rejected(f"ds/query response not understood: {exc!r}", page.raw[:65536])])
        status = result.get("status")
        if result.get("error") or page.status >= 400 or (isinstance(status, int) and status >= 400):
            failure = failure_for_status(status if isinstance(status, int) else page.status)
            error = f"query {q.name} failed ({status or page.status}): {result.get('error') or 'no message'}"
            return self._failed(failure, error, until, compact_json(result))
        self.guard.succeeded(q.name)
        events: list[Event] = []
        rejected: list[Rejected] = []
        times: list[int] = []
        for frame in frames:
            try:
                events.extend(frame_events(q, frame, self.mapper, after, until))
                times.extend(log_row_times(frame))
            except (KeyError, TypeError, ValueError, StopIteration, IndexError) as exc:
                rejected.append(Rejected(f"data frame not understood: {exc!r}", compact_json(frame)))
        if q.kind == "loki" and len(times) >= q.max_lines:
            return self._truncated(events, rejected, after, until, max(times))
        return Batch(events, rejected, {"to": until})

    def _failed(self, failure: Failure, error: str, until: int, payload: bytes) -> Batch:
        """Hold the window, or dead-letter it and move on once the query is parked."""
        if failure is Failure.GONE:
            failure = Failure.REJECTED  # a window is never "gone": skipping it would lose it silently
        verdict, letter = self.guard.failed(self.query.name, failure, error, payload)
        if verdict is Verdict.PARK and letter is not None:
            return Batch((), [letter], {"to": until})
        return Batch()

    def _truncated(self, events: list[Event], rejected: list[Rejected], after: int, until: int,
                   newest: int) -> Batch:
        labels = {"source": self.api.ctx.source.value, "stream": self.name}
        self.api.ctx.metrics.increment("seismo_poller_truncated_total", 1, labels)
        if newest - 1 > after:
            log.info("grafana/%s: %d lines (maxLines) up to %d ms; reading on from there",
                     self.name, self.query.max_lines, newest)
            return Batch(events, rejected, {"to": newest - 1}, more=True)
        reason = (f"query {self.query.name}: more than max_lines={self.query.max_lines} lines in the "
                  f"millisecond {newest}; the rest of that millisecond was not read")
        letter = Rejected(reason, compact_json({"query": self.query.name, "ms": newest}), "truncated")
        return Batch(events, [*rejected, letter], {"to": min(newest, until)}, more=newest < until)


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
