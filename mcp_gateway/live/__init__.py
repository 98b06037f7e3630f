"""Live read-only source tools: Kubernetes, Sentry, CloudWatch and Grafana queried on demand.

:func:`register_live_tools` adds the tools of every source that the poller
config file (the one ``seismo poll`` reads, :mod:`producers.config`) configures;
a source without a section gets no tools.  Tool names start with ``k8s_``,
``sentry_``, ``cloudwatch_`` or ``grafana_`` (:data:`LIVE_PREFIXES`), which is how
the gateway's roles tell them apart: they are for investigators.

Every tool only reads, through the pollers' clients and credentials; no
argument is a URL, every identifier is checked (:func:`.shape.ident`), and each
call passes its source's :class:`~.guard.SourceGuard` (shared cache, rate limit,
call budget).  Results are bounded (``max_items`` and :attr:`LiveLimits.max_chars`)
and text from the source is fenced as untrusted data.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from mcp.server.mcpserver import MCPServer

from mcp_gateway.live.guard import CallBudget, LiveCache, MemoryLiveCache, RedisLiveCache, SourceGuard
from mcp_gateway.live.shape import compact_schema
from producers.config import PollersFile, PollSettings
from producers.ratelimit import Clock, SystemClock, TokenBucket

LIVE_PREFIXES = ("k8s_", "sentry_", "cloudwatch_", "grafana_")

__all__ = ["LIVE_PREFIXES", "LiveCache", "LiveLimits", "LiveStats", "MemoryLiveCache", "RedisLiveCache",
           "is_live_tool", "register_live_tools"]


@dataclass
class LiveStats:
    """Filled by :func:`register_live_tools`: each source's gate, for metrics and benchmarks."""

    guards: dict[str, SourceGuard] = field(default_factory=dict)

    def snapshot(self) -> dict[str, dict[str, int]]:
        """Per source: upstream calls made and answers served from the cache, so far."""
        return {source: {"upstream_calls": g.upstream_calls, "cache_hits": g.cache_hits}
                for source, g in self.guards.items()}


@dataclass(frozen=True)
class LiveLimits:
    """Gateway-side bounds of the live tools (the rate limit comes from each config section)."""

    ttl_s: float = 30.0
    """How long an answer is served from the cache."""
    budget_calls: int = 600
    """Upstream calls a source may receive per ``budget_window_s`` from this gateway."""
    budget_window_s: float = 3600.0
    max_wait_s: float = 5.0
    """Longest wait for the rate limit before answering "retry later"."""
    max_chars: int = 12_000
    """Character budget of one answer's items (about 3,000 tokens)."""


def is_live_tool(name: str) -> bool:
    return name.startswith(LIVE_PREFIXES)


def _guard(source: str, section: Any, cache: LiveCache, namespace: str, limits: LiveLimits,
           clock: Clock) -> SourceGuard:
    common = section if isinstance(section, PollSettings) else PollSettings.model_validate(
        {k: v for k, v in section.items() if k in PollSettings.model_fields})
    return SourceGuard(source, TokenBucket(common.rate_per_s, common.burst, clock),
                       CallBudget(limits.budget_calls, limits.budget_window_s, clock), cache, clock,
                       namespace=namespace, ttl_s=limits.ttl_s, max_wait_s=limits.max_wait_s)


def register_live_tools(
    server: MCPServer,
    config: PollersFile,
    *,
    cache: LiveCache | None = None,
    namespace: str = "seismo",
    limits: LiveLimits | None = None,
    clock: Clock | None = None,
    environ: Mapping[str, str] | None = None,
    stack: ExitStack | None = None,
    stats: LiveStats | None = None,
) -> set[str]:
    """Register the live tools of every configured source on ``server``; return their names.

    ``cache`` is shared by every replica in production (:class:`RedisLiveCache`);
    None keeps a cache in this process.  ``namespace`` prefixes cache keys (the
    settings' ``app_id``).  Tokens are read from ``environ`` (default
    ``os.environ``) through each section's ``token_env``.  Clients that need
    closing (Kubernetes, boto3) are closed by ``stack`` when given; ``stats`` receives
    each source's gate (upstream calls, cache hits).  Performs no
    network I/O; raises :class:`producers.config.ConfigError` for an invalid
    CloudWatch section and what the Kubernetes client raises for a bad kubeconfig.
    """
    clock = clock or SystemClock()
    limits = limits or LiveLimits()
    cache = cache if cache is not None else MemoryLiveCache(clock)
    env = dict(os.environ) if environ is None else environ
    stack = stack if stack is not None else ExitStack()
    names: set[str] = set()
    stats = stats if stats is not None else LiveStats()
    if config.kubernetes is not None:
        from mcp_gateway.live import kubernetes

        guard = _guard("kubernetes", config.kubernetes, cache, namespace, limits, clock)
        stats.guards["kubernetes"] = guard
        names |= kubernetes.register(server, config.kubernetes, guard, limits.max_chars, stack)
    if config.sentry is not None:
        from mcp_gateway.live import sentry

        guard = _guard("sentry", config.sentry, cache, namespace, limits, clock)
        stats.guards["sentry"] = guard
        names |= sentry.register(server, config.sentry, guard, limits.max_chars, env)
    if config.grafana is not None:
        from mcp_gateway.live import grafana

        guard = _guard("grafana", config.grafana, cache, namespace, limits, clock)
        stats.guards["grafana"] = guard
        names |= grafana.register(server, config.grafana, guard, limits.max_chars, env)
    if config.cloudwatch is not None:
        from mcp_gateway.live import cloudwatch

        guard = _guard("cloudwatch", config.cloudwatch, cache, namespace, limits, clock)
        stats.guards["cloudwatch"] = guard
        names |= cloudwatch.register(server, config.cloudwatch, guard, limits.max_chars, stack)
    k8s = config.kubernetes
    _compact(server, names, single_cluster=k8s is None or k8s.in_cluster or len(k8s.contexts) <= 1)
    return names


def _compact(server: MCPServer, names: set[str], single_cluster: bool) -> None:
    """Shrink the registered tools' published schemas (:func:`.shape.compact_schema`).

    The SDK builds both schemas from the signature and the return model and offers no
    hook to shape them, but reads ``parameters`` and ``fn_metadata.output_schema``
    live ("reassigning them later takes effect"), so they are replaced after
    registration.  Validation still uses the argument and output models.
    """
    for name in names:
        tool = server._tool_manager.get_tool(name)
        if tool is None:
            continue
        tool.parameters = compact_schema(tool.parameters, output=False)
        if name.startswith("k8s_") and single_cluster:
            tool.parameters["properties"].pop("cluster", None)  # still accepted, not advertised
        if tool.fn_metadata.output_schema is not None:
            tool.fn_metadata.output_schema = compact_schema(tool.fn_metadata.output_schema, output=True)
