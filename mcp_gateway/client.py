"""An MCP client of a Seismo gateway over streamable HTTP with an API key (tests, the benchmark,
scripts).  ``mode`` is the SDK's: ``auto`` negotiates 2026-07-28 when the server offers it,
``legacy`` forces the initialize handshake of earlier protocol versions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


@asynccontextmanager
async def _transport(url: str, headers: dict[str, str], verify: Any) -> AsyncIterator[Any]:
    timeout = httpx2.Timeout(30.0, read=300.0)
    async with (
        httpx2.AsyncClient(headers=headers, timeout=timeout, verify=verify) as http,
        streamable_http_client(url, http_client=http) as streams,
    ):
        yield streams


def gateway_client(
    url: str, key: str | None, mode: str = "auto", verify: Any = True, **kwargs: Any
) -> Client:
    """A not-yet-entered :class:`mcp.Client` that sends ``Authorization: Bearer <key>``."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return Client(_transport(url, headers, verify), mode=mode, **kwargs)
