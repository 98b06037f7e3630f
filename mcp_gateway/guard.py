"""Every call passes here: who is calling, may their role call this, are they within their rate,
has the gateway caught up with Kafka — then the call, then one audit line.

:meth:`Guard.install` wraps the server's ``tools/call``, ``resources/read``, ``prompts/get`` and
``tools/list`` handlers (``tools/list`` shows a caller only the tools its role may call), and
audits subscriptions too.  A refusal is a tool error (``isError: true``) whose text says why
and, when retrying helps, after how long (also in ``_meta["io.seismo/retryAfter"]``).  Over
stdio or in process there is no HTTP request: the local user is trusted as admin.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_REQUEST, CallToolResult, ListToolsResult, TextContent

from mcp_gateway.audit import AuditLog, AuditRecord, args_hash
from mcp_gateway.auth.roles import Role, required_role, role_of
from mcp_gateway.context import GatewayContext
from mcp_gateway.errors import Forbidden, GatewayError, RateLimited, RecoverableError

Handler = Callable[[ServerRequestContext[Any, Any], Any], Awaitable[Any]]
RETRY_META = "io.seismo/retryAfter"
GATED = ("tools/call", "resources/read", "prompts/get")
"""Methods that answer from the incident table: refused until it caught up."""
AUDITED = (*GATED, "resources/subscribe", "resources/unsubscribe", "subscriptions/listen")


@dataclass
class Bucket:
    tokens: float
    stamp: float


@dataclass
class RateLimiter:
    """A token bucket per key: ``per_minute`` calls a minute, at most ``burst`` at once."""

    per_minute: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    overrides: dict[str, float] = field(default_factory=dict)
    _buckets: dict[str, Bucket] = field(default_factory=dict)

    def take(self, key: str) -> float:
        """0 when the call may go, else the seconds until it may."""
        rate = self.overrides.get(key, self.per_minute) / 60.0
        now = self.clock()
        b = self._buckets.setdefault(key, Bucket(float(self.burst), now))
        b.tokens = min(float(self.burst), b.tokens + (now - b.stamp) * rate)
        b.stamp = now
        if b.tokens >= 1.0:
            b.tokens -= 1.0
            return 0.0
        return (1.0 - b.tokens) / rate


def caller(rctx: ServerRequestContext[Any, Any]) -> tuple[str, Role | None]:
    """(key id, role) of the caller; (``local``, admin) when there is no HTTP request."""
    request = rctx.request
    if request is None or not hasattr(request, "scope"):
        return "local", Role.ADMIN
    user = request.scope.get("user")
    if isinstance(user, AuthenticatedUser):
        return user.access_token.client_id, role_of(user.scopes)
    return "anonymous", None


def refusal(exc: GatewayError) -> CallToolResult:
    text = str(exc)
    meta: dict[str, Any] | None = None
    if isinstance(exc, RecoverableError):
        text += f" (retryable: retry after {exc.retry_after:.0f} s)"
        meta = {RETRY_META: exc.retry_after}
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True, _meta=meta)


class Guard:
    def __init__(self, ctx: GatewayContext, audit: AuditLog, limiter: RateLimiter,
                 live_tools: set[str] | None = None) -> None:
        self.ctx = ctx
        self.audit = audit
        self.limiter = limiter
        self.live_tools = frozenset(live_tools or ())

    def check(self, method: str, name: str, key: str, role: Role | None) -> None:
        """Raise what refuses the call: Forbidden, RateLimited or NotReady."""
        if role is None:
            raise Forbidden("403 forbidden: this caller has no Seismo role (viewer, investigator or admin)")
        if method == "tools/call":
            need = required_role(name, self.live_tools)
            if need.level > role.level:
                raise Forbidden(f"403 forbidden: {name} needs the {need.value} role; this key is "
                                f"{role.value} (an admin can create a key with `seismo keys create`)")
        wait = self.limiter.take(key)
        if wait > 0:
            raise RateLimited(f"rate limit of key {key} reached", wait)
        if method in GATED:
            self.ctx.ready()

    def _rate_of(self, rctx: ServerRequestContext[Any, Any], key: str) -> None:
        """A key's own rate (``seismo keys create --rate``) overrides the default."""
        user = getattr(rctx.request, "scope", {}).get("user") if rctx.request is not None else None
        if isinstance(user, AuthenticatedUser) and user.access_token.claims:
            rate = user.access_token.claims.get("rate_per_minute")
            if isinstance(rate, int | float) and rate > 0:
                self.limiter.overrides[key] = float(rate)

    def _wrap(self, method: str, inner: Handler) -> Handler:
        async def guarded(rctx: ServerRequestContext[Any, Any], params: Any) -> Any:
            start = time.perf_counter()
            key, role = caller(rctx)
            self._rate_of(rctx, key)
            name = str(getattr(params, "name", None) or getattr(params, "uri", ""))
            arguments = getattr(params, "arguments", None)
            outcome, size = "error", 0
            try:
                try:
                    self.check(method, name, key, role)
                except GatewayError as exc:
                    outcome = type(exc).__name__
                    if method != "tools/call":
                        raise MCPError(INVALID_REQUEST, str(refusal(exc).content[0].text)) from exc  # type: ignore[union-attr]
                    result = refusal(exc)
                else:
                    result = await inner(rctx, params)
                    outcome = "tool_error" if getattr(result, "is_error", False) else "ok"
                size = len(result.model_dump_json(by_alias=True, exclude_none=True)) if hasattr(
                    result, "model_dump_json") else 0
                return result
            finally:
                self.audit.write(AuditRecord(
                    key_id=key, role=role.value if role else "-", method=method, tool=name or None,
                    args_sha256=args_hash(arguments or {}), result_bytes=size,
                    latency_ms=round((time.perf_counter() - start) * 1000, 3), outcome=outcome,
                ))

        return guarded

    def _list_tools(self, inner: Handler) -> Handler:
        async def listed(rctx: ServerRequestContext[Any, Any], params: Any) -> Any:
            result = await inner(rctx, params)
            _, role = caller(rctx)
            level = role.level if role is not None else -1
            if isinstance(result, ListToolsResult):
                keep = [t for t in result.tools if required_role(t.name, self.live_tools).level <= level]
                return result.model_copy(update={"tools": keep})
            return result

        return listed

    def install(self, server: MCPServer) -> None:
        # MCPServer exposes no public seam around its handlers; the low-level server does.
        low = server._lowlevel_server
        for method in AUDITED:
            entry = low.get_request_handler(method)
            if entry is not None:
                low.add_request_handler(method, entry.params_type, self._wrap(method, entry.handler))
        entry = low.get_request_handler("tools/list")
        if entry is not None:
            low.add_request_handler("tools/list", entry.params_type, self._list_tools(entry.handler))
