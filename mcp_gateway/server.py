"""The MCP server: incident and event-search tools with structured output over stdio or
streamable HTTP.

Tools are small typed functions; their docstrings are the descriptions an MCP
client shows the model.  The incident table and the recent-events window arrive
through :class:`GatewayContext` so tests can hand in pre-filled ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mcp_gateway.recent import DISABLED, RecentEvents, SearchResults
from mcp_gateway.store import IncidentStore, InvalidCursor
from schemas.models import Incident, IncidentStatus, Source, utc

INSTRUCTIONS = (
    "Seismo correlates logs, metrics, errors and alerts from Kubernetes, Sentry, CloudWatch and "
    "Grafana into incidents. Start with list_incidents(status='open') to see what is broken, "
    "then get_incident(id) for the evidence and the ranked root-cause candidates. "
    "search_events(query) finds recent events of every source by meaning, grouped by message pattern."
)


class IncidentPage(BaseModel):
    """One page of incidents, newest update first."""

    incidents: list[Incident]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` to get the next page; null on the last page."
    )
    total: int = Field(description="Incidents matching the filters, over all pages.")


@dataclass
class GatewayContext:
    store: IncidentStore
    recent: RecentEvents | None = None
    """The searchable window of recent events; None when semantic search is off."""
    search_disabled: str = DISABLED
    """Why search is unavailable when ``recent`` is None (the tool's error message)."""


def build_server(ctx: GatewayContext) -> MCPServer:
    """Build the MCP server over ``ctx.store``.  Registers tools and the health route."""
    server: MCPServer = MCPServer("seismo", instructions=INSTRUCTIONS, version="0.1.0")

    @server.tool(structured_output=True)
    def list_incidents(
        status: Literal["open", "resolved"] | None = None,
        service: str | None = None,
        since: datetime | None = None,
        limit: int = Field(default=50, ge=1, le=500),
        cursor: str | None = None,
    ) -> IncidentPage:
        """List incidents, newest update first.

        Filters: `status` (open or resolved), `service` (incidents that involve it),
        `since` (RFC 3339; incidents updated at or after it). Paginate with `cursor`.
        """
        try:
            page = ctx.store.query(
                status=IncidentStatus(status) if status else None,
                service=service,
                since=utc(since) if since else None,
                limit=limit,
                cursor=cursor,
            )
        except (InvalidCursor, ValueError) as exc:
            raise ToolError(str(exc)) from exc
        return IncidentPage(incidents=page.incidents, next_cursor=page.next_cursor, total=page.total)

    @server.tool(structured_output=True)
    def get_incident(id: str) -> Incident:
        """Get one incident by id: status, severity, services, sources, the ranked
        root-cause candidates and the evidence (the events behind it)."""
        incident = ctx.store.get(id)
        if incident is None:
            raise ToolError(f"no incident with id {id!r}; list_incidents shows the known ids")
        return incident

    @server.tool(structured_output=True)
    def search_events(
        query: Annotated[str, Field(max_length=1000)],
        service: str | None = None,
        source: Source | None = None,
        since: datetime | None = None,
        limit: int = Field(default=20, ge=1, le=100),
    ) -> SearchResults:
        """Search recent events of every source (logs, errors, alerts, Kubernetes events…) by
        meaning: `query` is plain language or a log fragment, e.g. "database connection refused".

        Events are grouped by template (the message with ids, numbers and other variable parts
        replaced by <PLACEHOLDERS>), since one problem usually repeats one message many times.
        Each hit is one template, best `score` (cosine similarity, 1 = same meaning) first, with
        `count` (its matching events), `first_seen`/`last_seen` (event time), its `services` and
        `sources`, the newest matching event in full (`latest`; secrets already redacted) and the
        ids of the newest few (`event_ids`, the ids incident evidence uses). Low scores mean
        nothing similar happened recently. Filters: `service`, `source`, `since` (RFC 3339, event
        time at or after). Only recent events are searched (see `window_start`); `catching_up`
        true means the gateway is still reading them and results may be incomplete.
        """
        if ctx.recent is None:
            raise ToolError(ctx.search_disabled)
        try:
            return ctx.recent.search(
                query,
                service=service,
                source=source.value if source else None,
                since=utc(since) if since else None,
                limit=limit,
            )
        except ValueError as exc:  # EmptyQuery, a naive `since`
            raise ToolError(str(exc)) from exc

    @server.custom_route("/healthz", methods=["GET"])  # type: ignore[untyped-decorator]
    async def healthz(request: Request) -> Response:
        ready = ctx.store.caught_up.is_set()
        return JSONResponse(
            {"status": "ok" if ready else "starting", "incidents": len(ctx.store),
             "caught_up": ready, "search": ctx.recent.stats() if ctx.recent is not None else None},
            status_code=200 if ready else 503,
        )

    return server
