"""``GET /metrics``: the poller's counters in the Prometheus text format, served on the poller's event loop.

``seismo poll SOURCE --config FILE --metrics-port P`` starts one :class:`MetricsServer`
next to the poller.  It runs on the same asyncio loop that updates the
:class:`~producers.metrics.RecordingMetrics`, so a scrape never sees a table
mid-update and needs no lock.  The server speaks just enough HTTP/1.1 for
Prometheus and curl: one request per connection, ``GET /metrics`` answers 200
``text/plain; version=0.0.4``, any other path 404, any other method 405.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType
from typing import Self

from producers.metrics import RecordingMetrics

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


class MetricsServer:
    """An HTTP endpoint for one :class:`RecordingMetrics`.  Use ``async with``; port 0 picks a free one."""

    def __init__(self, metrics: RecordingMetrics, host: str = "127.0.0.1", port: int = 0,
                 read_timeout_s: float = 5.0) -> None:
        self.metrics, self.host, self.requested_port = metrics, host, port
        self.read_timeout_s = read_timeout_s
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked for)."""
        assert self._server is not None, "server not started"
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    async def start(self) -> None:
        """Bind and listen; raises OSError when the port is taken (the operator picks another)."""
        self._server = await asyncio.start_server(self._serve, self.host, self.requested_port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.read_timeout_s)
            status, body = self.respond(head.split(b"\r\n", 1)[0].decode("latin-1"))
            writer.write(
                f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {CONTENT_TYPE}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode("latin-1") + body
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError) as exc:
            log.debug("metrics endpoint: dropped a connection: %r", exc)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def respond(self, request_line: str) -> tuple[int, bytes]:
        """Status and body for one request line such as ``GET /metrics HTTP/1.1`` (pure)."""
        parts = request_line.split()
        if len(parts) != 3:
            return 400, b"bad request\n"
        method, target, _ = parts
        if target.split("?", 1)[0] != "/metrics":
            return 404, b"not found: try /metrics\n"
        if method not in ("GET", "HEAD"):
            return 405, b"method not allowed\n"
        body = self.metrics.render().encode("utf-8")
        return 200, b"" if method == "HEAD" else body
