"""The MCP server: incident tools with structured output over stdio or streamable HTTP.

Tools are small typed functions; their docstrings are the descriptions an MCP
client shows the model.  The incident table arrives through
:class:`GatewayContext` so tests can hand in a pre-filled store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mcp_gateway.store import IncidentStore, InvalidCursor
from schemas.models import Incident, IncidentStatus, utc

INSTRUCTIONS = (
    "Seismo correlates logs, metrics, errors and alerts from Kubernetes, Sentry, CloudWatch and "
    "Grafana into incidents. Start with list_incidents(status='open') to see what is broken, "
    "then get_incident(id) for the evidence and the ranked root-cause candidates."
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

    @server.custom_route("/healthz", methods=["GET"])  # type: ignore[untyped-decorator]
    async def healthz(request: Request) -> Response:
        ready = ctx.store.caught_up.is_set()
        return JSONResponse(
            {"status": "ok" if ready else "starting", "incidents": len(ctx.store),
             "caught_up": ready},
            status_code=200 if ready else 503,
        )

    return server
