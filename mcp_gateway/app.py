"""``seismo gateway``: follow the incidents, enriched-events and anomalies topics, serve them over MCP.

Over streamable HTTP every call needs an API key (``seismo keys create``) or, when an issuer is
configured, an OAuth 2.1 bearer JWT; TLS when a certificate and key are configured.  Over stdio
the local user is trusted.
"""

from __future__ import annotations

import logging
from typing import Literal

import anyio
import uvicorn
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings

from mcp_gateway.anomalies import AnomalyMaterializer, AnomalyWindow
from mcp_gateway.audit import AuditLog
from mcp_gateway.auth.keys import KeyStore, default_keys_path
from mcp_gateway.auth.verifier import JwtVerifier, SeismoTokenVerifier
from mcp_gateway.context import GatewayContext
from mcp_gateway.events_feed import RecentEventsMaterializer
from mcp_gateway.events_log import EventLog
from mcp_gateway.feedback import FeedbackLog, FeedbackMaterializer, feedback_topic
from mcp_gateway.guard import RateLimiter
from mcp_gateway.links import LinkBases
from mcp_gateway.materializer import IncidentMaterializer
from mcp_gateway.recent import DISABLED, RecentEvents, recent_events
from mcp_gateway.server import LiveRegistrar, build_server
from mcp_gateway.settings import GatewaySettings
from mcp_gateway.store import IncidentStore
from mcp_gateway.tls import CertWatcher
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


def _live(settings: Settings, gs: GatewaySettings) -> LiveRegistrar | None:
    """The live source tools' registrar when a sources config is set (and the package is there)."""
    if gs.sources_config is None:
        return None
    try:
        from mcp_gateway.live import RedisLiveCache, register_live_tools
        from producers.config import load_config
    except ImportError as exc:  # the live package is optional in this build
        log.error("live source tools are unavailable: %s", exc)
        return None
    config = load_config(gs.sources_config)
    cache = None if settings.state_backend == "memory" else RedisLiveCache(settings.redis)

    def register(server: MCPServer) -> set[str]:
        # keys seismo:{namespace}:live:..., beside the deployment's other Redis keys
        return register_live_tools(server, config, cache=cache, namespace=settings.redis_prefix)

    return register


def _auth(gs: GatewaySettings, settings: Settings, resource: str) -> tuple[AuthSettings, SeismoTokenVerifier]:
    keys = KeyStore(gs.keys_file or default_keys_path(settings.state_dir))
    jwt = None
    if gs.jwt_issuer and gs.jwt_jwks_url:
        jwt = JwtVerifier(gs.jwt_issuer, gs.jwt_jwks_url, gs.jwt_audience or resource, gs.jwt_role_claim)
        auth = AuthSettings(issuer_url=gs.jwt_issuer, resource_server_url=resource,  # type: ignore[arg-type]
                            validate_token_resource=False)  # JwtVerifier checks `aud` itself
    else:  # API keys only: no authorization server to advertise
        auth = AuthSettings(issuer_url=resource, resource_server_url=None)  # type: ignore[arg-type]
    if not keys.keys() and jwt is None:
        log.warning("no API key exists yet: every HTTP call is refused until `seismo keys create`")
    return auth, SeismoTokenVerifier(keys, jwt)


def run_gateway(
    settings: Settings,
    transport: Literal["stdio", "streamable-http"],
    host: str,
    port: int,
    gateway: GatewaySettings | None = None,
) -> None:
    """Serve until interrupted.  Blocks.  The MCP endpoint is ``http(s)://HOST:PORT/mcp``."""
    gs = gateway or GatewaySettings()
    topics = Topics.from_settings(settings)
    store = IncidentStore()
    materializer = IncidentMaterializer(settings.bootstrap, topics.incidents, store)
    recent, disabled = _search(settings)
    events = EventLog(settings.search_max_events, settings.search_lookback_s)
    feed = RecentEventsMaterializer(settings.bootstrap, topics.enriched, events, recent)
    anomalies = AnomalyWindow(lookback_s=settings.search_lookback_s)
    anomaly_feed = AnomalyMaterializer(settings.bootstrap, topics.anomalies, anomalies)
    feedback = FeedbackLog(settings.bootstrap, feedback_topic(settings.topic_prefix))
    followers = [materializer, feed, anomaly_feed, FeedbackMaterializer(settings.bootstrap, feedback)]
    for f in followers:
        f.start()
    ctx = GatewayContext(
        store, recent, disabled, events=events, anomalies=anomalies, feedback=feedback,
        embedder=recent.query_embedder if recent is not None else None,
        links=LinkBases.from_settings(gs), token_budget=gs.token_budget, noop_tool=gs.noop_tool,
        readers=followers,
    )
    audit = AuditLog(gs.audit_file or settings.state_dir / "gateway" / "audit.jsonl")
    limiter = RateLimiter(gs.rate_per_minute, gs.rate_burst)
    live = _live(settings, gs)
    watcher: CertWatcher | None = None
    try:
        if transport == "stdio":
            server = build_server(ctx, audit=audit, limiter=limiter, live=live)
            anyio.run(server.run_stdio_async)
            return
        tls = gs.tls_cert is not None and gs.tls_key is not None
        resource = gs.resource_url or f"{'https' if tls else 'http'}://{host}:{port}/mcp"
        auth, verifier = _auth(gs, settings, resource)
        server = build_server(ctx, audit=audit, limiter=limiter, live=live, auth=auth, verifier=verifier)
        # Bound to a non-loopback address (a container, a pod) the Host header is the
        # service's name, which the SDK's DNS-rebinding guard would refuse.
        security = None if host in LOOPBACK else TransportSecuritySettings(
            enable_dns_rebinding_protection=False
        )
        app = server.streamable_http_app(transport_security=security, host=host)
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", lifespan="on",
            ssl_certfile=str(gs.tls_cert) if tls else None, ssl_keyfile=str(gs.tls_key) if tls else None,
        )
        config.load()
        if tls and config.ssl is not None and gs.tls_cert is not None and gs.tls_key is not None:
            import ssl

            config.ssl.minimum_version = ssl.TLSVersion.TLSv1_2
            watcher = CertWatcher(config.ssl, gs.tls_cert, gs.tls_key)
            watcher.start()
        uvicorn.Server(config).run()
    finally:
        if watcher is not None:
            watcher.stop()
        for f in followers:
            f.stop()
        audit.close()
        if recent is not None:
            recent.cache.close()
