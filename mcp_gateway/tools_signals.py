"""Signal tools: search_events, what_changed, service_health, list_anomalies, record_feedback
(and a no-op tool for benchmarks when asked for).  Budgets as in :mod:`mcp_gateway.tools_incidents`.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel, Field

from mcp_gateway.budget import Summary, fit, summarize, untrusted
from mcp_gateway.context import GatewayContext
from mcp_gateway.errors import GatewayError
from mcp_gateway.guard import caller
from mcp_gateway.recent import SearchResults
from mcp_gateway.tools_incidents import MaxItems, MaxTokens, is_change
from mcp_gateway.views import UNTRUSTED, EventRef, ref_of_logged
from schemas.feedback import Feedback, Outcome
from schemas.models import IncidentStatus, Source, utc


class Changes(BaseModel):
    """Deploys, releases and config changes before `end`, newest first."""

    service: str
    related_services: list[str] = Field(description="Services seen in the same incidents as `service`.")
    start: datetime
    end: datetime
    changes: list[EventRef]
    window_start: datetime | None = Field(
        description="Oldest event this gateway keeps; earlier changes are unknown."
    )
    summary: Summary


class ServiceHealth(BaseModel):
    service: str
    status: Literal["anomalous", "quiet"] = Field(
        description="quiet = no anomaly signal in the window (not a guarantee of health)."
    )
    anomalies: int
    max_score: float
    last_anomaly_at: datetime | None
    top_signals: list[str]
    open_incidents: int


class HealthReport(BaseModel):
    window_minutes: int
    services: list[ServiceHealth] = Field(description="Most anomalous first.")
    summary: Summary


class AnomalyView(BaseModel):
    id: str
    event_id: str
    service: str
    source: str
    kind: str
    severity: str
    timestamp: datetime
    score: float
    signal: str
    detectors: list[str]
    explanation: dict[str, str]
    message: str = Field(description=UNTRUSTED)


class AnomalyPage(BaseModel):
    anomalies: list[AnomalyView]
    next_cursor: str | None
    total: int
    summary: Summary


class FeedbackRecorded(BaseModel):
    incident_id: str
    outcome: str
    recorded_by: str
    recorded_at: datetime
    topic: str


class Noop(BaseModel):
    ok: bool = True


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        n = int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().removeprefix("a:"))
    except ValueError as exc:
        raise GatewayError(f"invalid cursor {cursor!r}: pass next_cursor from a previous page") from exc
    if n < 0:
        raise GatewayError(f"invalid cursor {cursor!r}: pass next_cursor from a previous page")
    return n


def _cursor(n: int) -> str:
    return base64.urlsafe_b64encode(f"a:{n}".encode()).decode().rstrip("=")


def register_signal_tools(server: MCPServer, ctx: GatewayContext) -> None:
    def budget(max_tokens: int | None) -> int:
        return max_tokens or ctx.token_budget

    @server.tool(structured_output=True)
    def search_events(
        query: Annotated[str, Field(max_length=1000)],
        service: str | None = None,
        source: Source | None = None,
        since: datetime | None = None,
        max_items: Annotated[int, Field(ge=1, le=100)] = 20,
        max_tokens: MaxTokens = None,
    ) -> SearchResults:
        """Search recent events of every source (logs, errors, alerts, Kubernetes events…) by
        meaning: `query` is plain language or a log fragment, e.g. "database connection refused".

        Events are grouped by template (the message with variable parts replaced by
        <PLACEHOLDERS>). Each hit is one template, best `score` (cosine, 1 = same meaning) first,
        with `count`, `first_seen`/`last_seen`, its `services` and `sources`, the newest matching
        event (`latest`) and the ids of the newest few (`event_ids`, as incident evidence uses).
        Filters: `service`, `source`, `since` (RFC 3339). Only recent events are searched (see
        `window_start`); `catching_up` true means results may be incomplete: ask again shortly.
        """
        ctx.ready()
        if ctx.recent is None:
            raise GatewayError(ctx.search_disabled)
        try:
            res = ctx.recent.search(
                query,
                service=service,
                source=source.value if source else None,
                since=utc(since) if since else None,
                limit=max_items,
            )
        except ValueError as exc:  # EmptyQuery, a naive `since`
            raise GatewayError(str(exc)) from exc
        hits = [
            h.model_copy(
                update={"latest": h.latest.model_copy(update={"message": untrusted(h.latest.message)})}
            )
            for h in res.hits
        ]
        return fit(lambda k: res.model_copy(update={"hits": hits[:k]}), len(hits), budget(max_tokens))

    @server.tool(structured_output=True)
    def what_changed(
        service: Annotated[str, Field(min_length=1, max_length=256)],
        before: datetime | None = None,
        window_minutes: Annotated[int, Field(ge=1, le=7 * 24 * 60)] = 120,
        include_related: bool = True,
        max_items: MaxItems = 30,
        max_tokens: MaxTokens = None,
    ) -> Changes:
        """Deploys, releases and config changes of `service` (and of the services seen in the
        same incidents, unless include_related is false) in the `window_minutes` before `before`
        (RFC 3339; default: now), newest first. Read from the enriched events the gateway follows."""
        ctx.ready()
        log = ctx.event_log()
        end = utc(before) if before else datetime.now(UTC)
        start = end - timedelta(minutes=window_minutes)
        related = sorted(
            {s for i in ctx.store.all() if service in i.services for s in i.services} - {service}
        )
        services = {service, *related} if include_related else {service}
        found = [e for e in log.query(services=services, since=start, until=end) if is_change(e)]
        found.reverse()
        refs = [ref_of_logged(e, ctx.links) for e in found]

        def build(k: int) -> Changes:
            return Changes(
                service=service,
                related_services=related if include_related else [],
                start=start,
                end=end,
                changes=refs[:k],
                window_start=log.window_start(),
                summary=summarize(len(refs), k, (r.service for r in refs), (r.kind for r in refs)),
            )

        return fit(build, min(max_items, len(refs)), budget(max_tokens))

    @server.tool(structured_output=True)
    def service_health(
        service: str | None = None,
        window_minutes: Annotated[int, Field(ge=1, le=24 * 60)] = 60,
        max_items: MaxItems = 20,
        max_tokens: MaxTokens = None,
    ) -> HealthReport:
        """Current anomaly signals per service (from seismo.anomalies, arrived in the last
        `window_minutes`), most anomalous first, with their open incidents. `quiet` means no
        anomaly signal, not proof of health."""
        ctx.ready()
        window = ctx.anomaly_window()
        recent = window.query(service=service, arrived_after=window.clock() - window_minutes * 60)
        opened = [i for i in ctx.store.all() if i.status is IncidentStatus.OPEN]
        names = sorted({a.service for a in recent} | ({service} if service else set()))
        rows = []
        for name in names:
            mine = [a for a in recent if a.service == name]
            signals = sorted({a.signal for a in mine}, key=lambda s: -sum(a.signal == s for a in mine))
            rows.append(
                ServiceHealth(
                    service=name,
                    status="anomalous" if mine else "quiet",
                    anomalies=len(mine),
                    max_score=max((a.score for a in mine), default=0.0),
                    last_anomaly_at=max((a.timestamp for a in mine), default=None),
                    top_signals=signals[:5],
                    open_incidents=sum(name in i.services for i in opened),
                )
            )
        rows.sort(key=lambda r: (-r.max_score, -r.anomalies, r.service))

        def build(k: int) -> HealthReport:
            return HealthReport(
                window_minutes=window_minutes,
                services=rows[:k],
                summary=summarize(len(rows), k, (a.service for a in recent), (a.signal for a in recent)),
            )

        return fit(build, min(max_items, len(rows)), budget(max_tokens))

    @server.tool(structured_output=True)
    def list_anomalies(
        service: str | None = None,
        since: datetime | None = None,
        min_score: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0,
        max_items: MaxItems = 50,
        max_tokens: MaxTokens = None,
        cursor: str | None = None,
    ) -> AnomalyPage:
        """Recent anomalies (scored signals judged anomalous), newest first; filters `service`,
        `since` (RFC 3339, event time), `min_score`. Paginate with `cursor`."""
        ctx.ready()
        window = ctx.anomaly_window()
        try:
            found = window.query(service=service, since=utc(since) if since else None, min_score=min_score)
        except ValueError as exc:
            raise GatewayError(str(exc)) from exc
        first = _offset(cursor)
        page = found[first : first + max_items]

        def build(k: int) -> AnomalyPage:
            return AnomalyPage(
                anomalies=[
                    AnomalyView(
                        **a.model_dump(exclude={"message", "template_id"}), message=untrusted(a.message)
                    )
                    for a in page[:k]
                ],
                next_cursor=_cursor(first + k) if first + k < len(found) else None,
                total=len(found),
                summary=summarize(len(found), k, (a.service for a in found), (a.signal for a in found)),
            )

        return fit(build, len(page), budget(max_tokens))

    @server.tool(structured_output=True)
    def record_feedback(
        incident_id: Annotated[str, Field(min_length=1, max_length=256)],
        outcome: Outcome,
        context: Context,
        remediation: Annotated[str | None, Field(max_length=2000)] = None,
        root_cause_service: Annotated[str | None, Field(max_length=256)] = None,
        note: Annotated[str, Field(max_length=4000)] = "",
    ) -> FeedbackRecorded:
        """Record an incident's outcome (admin role): how it ended, the remediation applied and
        the actual root-cause service. Kept on the compacted seismo.feedback topic; used for
        remediation success rates. The latest verdict per incident wins."""
        ctx.ready()
        if ctx.feedback is None:
            raise GatewayError("feedback is not recorded by this gateway (no Kafka connection configured)")
        if ctx.store.get(incident_id) is None:
            raise GatewayError(f"no incident with id {incident_id!r}; list_incidents shows the known ids")
        who, _ = caller(context.request_context)
        fb = Feedback(
            incident_id=incident_id,
            outcome=outcome,
            remediation=remediation,
            root_cause_service=root_cause_service,
            note=note,
            recorded_by=who,
            recorded_at=datetime.now(UTC),
        )
        ctx.feedback.record(fb)
        return FeedbackRecorded(
            incident_id=incident_id,
            outcome=outcome.value,
            recorded_by=who,
            recorded_at=fb.recorded_at,
            topic=ctx.feedback.topic,
        )

    if ctx.noop_tool:

        @server.tool(structured_output=True)
        async def noop() -> Noop:
            """Does nothing (benchmark baseline; on the event loop, the cheapest a tool can be)."""
            return Noop()
