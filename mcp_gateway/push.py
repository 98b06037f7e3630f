"""Tells subscribed clients when an incident changes on the compacted topic.

The materializer thread reports each changed incident id (``IncidentStore.on_change``); the
:class:`ChangeNotifier` task on the server's event loop coalesces a burst and announces
``incident://{id}`` and ``incidents://open`` changed:

* to 2026-07-28 clients through the server's ``subscriptions/listen`` bus (the SDK's
  ``ListenHandler`` filters by the URIs each stream asked for);
* to clients on earlier protocol versions that sent ``resources/subscribe``, as
  ``notifications/resources/updated`` on their session's standalone stream.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import anyio
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.session import ServerSession
from mcp.server.subscriptions import ResourceUpdated, SubscriptionBus
from mcp_types import EmptyResult, SubscribeRequestParams, UnsubscribeRequestParams

from mcp_gateway.store import IncidentStore

log = logging.getLogger(__name__)

OPEN_URI = "incidents://open"


def incident_uri(incident_id: str) -> str:
    return f"incident://{incident_id}"


class ChangeNotifier:
    """Bridges store changes (any thread) to MCP notifications (the event loop)."""

    def __init__(self, bus: SubscriptionBus) -> None:
        self.bus = bus
        self._legacy: dict[str, dict[int, ServerSession]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[str] | None = None
        self.sent = 0

    def attach(self, store: IncidentStore) -> None:
        store.on_change(self._changed)

    def _changed(self, incident_id: str) -> None:
        loop, queue = self._loop, self._queue
        if loop is not None and queue is not None and not loop.is_closed():
            loop.call_soon_threadsafe(queue.put_nowait, incident_id)

    # A request's ServerSession is per request; its connection is the client's, so it keys one
    # subscriber per client (the SDK has no public handle for it).

    async def _subscribe(
        self, rctx: ServerRequestContext[Any, Any], params: SubscribeRequestParams
    ) -> EmptyResult:
        self._legacy.setdefault(str(params.uri), {})[id(rctx.session._connection)] = rctx.session
        return EmptyResult()

    async def _unsubscribe(
        self, rctx: ServerRequestContext[Any, Any], params: UnsubscribeRequestParams
    ) -> EmptyResult:
        self._legacy.get(str(params.uri), {}).pop(id(rctx.session._connection), None)
        return EmptyResult()

    def install(self, server: MCPServer) -> None:
        """Serve ``resources/subscribe`` and ``resources/unsubscribe`` (earlier protocol versions)."""
        low = server._lowlevel_server
        low.add_request_handler("resources/subscribe", SubscribeRequestParams, self._subscribe)
        low.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, self._unsubscribe)

    async def announce(self, uri: str) -> None:
        await self.bus.publish(ResourceUpdated(uri=uri))
        sessions = self._legacy.get(uri, {})
        for key, session in list(sessions.items()):
            try:
                with anyio.fail_after(5):
                    await session.send_resource_updated(uri)
                self.sent += 1
            except Exception as exc:  # a gone client must not stop the others: forget it
                log.info("dropping the subscription of a closed session to %s: %r", uri, exc)
                sessions.pop(key, None)

    async def run(self) -> None:
        """Announce changes until cancelled.  Call on the loop that serves the sessions."""
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        try:
            while True:
                changed = {await self._queue.get()}
                while not self._queue.empty():
                    changed.add(self._queue.get_nowait())
                for incident_id in sorted(changed):
                    await self.announce(incident_uri(incident_id))
                await self.announce(OPEN_URI)
        finally:
            self._loop = self._queue = None
