"""``seismo gateway``: materialize ``seismo.incidents`` and serve it over MCP."""

from __future__ import annotations

import logging
from typing import Literal

import anyio
import uvicorn
from mcp.server.transport_security import TransportSecuritySettings

from mcp_gateway.materializer import IncidentMaterializer
from mcp_gateway.server import GatewayContext, build_server
from mcp_gateway.store import IncidentStore
from seismo.settings import Settings
from seismo.topics import Topics

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def run_gateway(
    settings: Settings,
    transport: Literal["stdio", "streamable-http"],
    host: str,
    port: int,
) -> None:
    """Serve until interrupted.  Blocks.  The MCP endpoint is ``http://HOST:PORT/mcp``."""
    store = IncidentStore()
    materializer = IncidentMaterializer(
        settings.bootstrap, Topics.from_settings(settings).incidents, store
    )
    materializer.start()
    server = build_server(GatewayContext(store))
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
