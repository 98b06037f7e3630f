"""``seismo gateway``: materialize ``seismo.incidents`` and recent enriched events, serve them over MCP."""

from __future__ import annotations

import logging
from typing import Literal

import anyio
import uvicorn
from mcp.server.transport_security import TransportSecuritySettings

from mcp_gateway.materializer import IncidentMaterializer
from mcp_gateway.recent import DISABLED, RecentEvents, RecentEventsMaterializer, recent_events
from mcp_gateway.server import GatewayContext, build_server
from mcp_gateway.store import IncidentStore
from seismo.settings import Settings
from seismo.topics import Topics
from stream_processors.embed import EmbedError

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _search(settings: Settings) -> tuple[RecentEvents | None, str]:
    """The recent-events window, or None and the reason search_events gives for being unavailable."""
    if settings.embedder == "off":
        return None, DISABLED
    try:
        return recent_events(settings), DISABLED
    except EmbedError as exc:
        log.error("semantic search is unavailable: %s", exc)
        return None, f"semantic search is unavailable on this gateway: {exc}"


def run_gateway(
    settings: Settings,
    transport: Literal["stdio", "streamable-http"],
    host: str,
    port: int,
) -> None:
    """Serve until interrupted.  Blocks.  The MCP endpoint is ``http://HOST:PORT/mcp``."""
    topics = Topics.from_settings(settings)
    store = IncidentStore()
    materializer = IncidentMaterializer(settings.bootstrap, topics.incidents, store)
    materializer.start()
    recent, disabled = _search(settings)
    feed = None
    if recent is not None:
        feed = RecentEventsMaterializer(settings.bootstrap, topics.enriched, recent)
        feed.start()
    server = build_server(GatewayContext(store, recent, disabled))
    try:
        if transport == "stdio":
            anyio.run(server.run_stdio_async)
            return
        # Bound to a non-loopback address (a container, a pod) the Host header is the
        # service's name, which the SDK's DNS-rebinding guard would refuse.
        security = None if host in LOOPBACK else TransportSecuritySettings(
            enable_dns_rebinding_protection=False
        )
        app = server.streamable_http_app(transport_security=security, host=host)
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
        uvicorn.Server(config).run()
    finally:
        materializer.stop()
        if feed is not None:
            feed.stop()
        if recent is not None:
            recent.cache.close()
