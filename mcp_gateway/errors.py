"""The gateway's errors, by what the caller does next.

Every one of them reaches an MCP client as a tool error (``isError: true``) whose
text says what happened and what to do; none is a protocol failure.
"""

from __future__ import annotations

from mcp.server.mcpserver.exceptions import ToolError


class GatewayError(ToolError):
    """Base of the gateway's errors; the message is shown to the MCP client as is."""


class RecoverableError(GatewayError):
    """Retry the same call after ``retry_after`` seconds; nothing is wrong with the arguments."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotReady(RecoverableError):
    """The incident store has not caught up with Kafka (broker unreachable or still reading)."""


class RateLimited(RecoverableError):
    """The caller's key made more calls than its rate allows."""


class NotProduced(GatewayError):
    """The pipeline does not produce the data this tool reads (yet): not an empty answer."""


class Forbidden(GatewayError):
    """The caller's role does not allow the tool; ask an admin for a key with a higher role."""
