"""The tool errors of the live source tools, named by what the assistant does next.

Every one is a :class:`~mcp.server.mcpserver.exceptions.ToolError`, so the MCP
client sees ``is_error=True`` with the message and never a traceback:

* :class:`Retryable` — the source (429, 5xx, timeout) or the gateway's own rate
  limit or call budget said "not now"; ``retry_after`` (seconds) when known.
  The assistant may call again later with the same arguments.
* :class:`NotFound` — the pod, issue, dashboard … does not exist (404).
* :class:`Rejected` — the arguments are invalid, or the source refused the
  request (401/403/other 4xx): calling again unchanged will not help.
"""

from __future__ import annotations

import math

from mcp.server.mcpserver.exceptions import ToolError


class LiveToolError(ToolError):
    """Base of the live tools' errors."""


class Retryable(LiveToolError):
    """Try again later; ``retry_after`` says when, if the source or the limiter knows."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        if retry_after is not None:
            message = f"{message}; retryable, retry after {math.ceil(retry_after)} s"
        else:
            message = f"{message}; retryable, try again shortly"
        super().__init__(message)
        self.retry_after = retry_after


class NotFound(LiveToolError):
    """The named object does not exist at the source."""


class Rejected(LiveToolError):
    """Bad arguments or a refusal by the source; do not retry unchanged."""


def for_status(source: str, what: str, status: int, body: str = "",
               retry_after: float | None = None) -> LiveToolError:
    """The tool error for an upstream HTTP ``status`` (never called for 2xx)."""
    if status == 429:
        return Retryable(f"{source} is rate limiting the gateway (HTTP 429) for {what}", retry_after)
    if status >= 500:
        return Retryable(f"{source} failed (HTTP {status}) for {what}", retry_after)
    if status == 404:
        return NotFound(f"{source}: {what} not found (HTTP 404)")
    if status in (401, 403):
        return Rejected(f"{source} refused the gateway's credentials for {what} (HTTP {status})")
    return Rejected(f"{source} rejected {what} (HTTP {status}): {body[:200]}")
