"""JSON reads over the pollers' httpx clients (:func:`producers.sources.build_client`).

Only paths built by the tool modules reach :func:`read_json`, always relative to
the configured base URL; an assistant never supplies a URL.  Outcomes become the
tool errors of :mod:`mcp_gateway.live.errors` (429/5xx/timeouts retryable with
``Retry-After`` when sent, else Sentry's ``X-Sentry-Rate-Limit-Reset``; 404 not
found; other 4xx rejected).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import httpx

from mcp_gateway.live.errors import Rejected, Retryable, for_status
from producers.ratelimit import parse_retry_after

Params = Mapping[str, str | int] | Sequence[tuple[str, str | int]]


async def read_json(client: httpx.AsyncClient, source: str, what: str, path: str,
                    params: Params | None = None, *, method: Literal["GET", "POST"] = "GET",
                    body: Any = None) -> Any:
    """The decoded JSON of one read request.  ``POST`` is used only for query APIs that read."""
    if "://" in path or not path.startswith("/"):
        raise Rejected(f"{source}: refusing a request outside the configured API ({path[:80]!r})")
    pairs = params.items() if isinstance(params, Mapping) else (params or ())
    query: list[tuple[str, str | int | float | bool | None]] = [(k, str(v)) for k, v in pairs]
    try:
        response = await client.request(method, path, params=query, json=body)
    except httpx.TimeoutException:
        raise Retryable(f"{source} timed out for {what}") from None
    except httpx.TransportError as exc:
        raise Retryable(f"{source} is unreachable for {what} ({type(exc).__name__})") from None
    if response.status_code >= 300:
        now = datetime.now(UTC)
        wait = parse_retry_after(response.headers.get("Retry-After"), now)
        reset = response.headers.get("X-Sentry-Rate-Limit-Reset", "")  # Sentry's 429 has no Retry-After
        if wait is None and response.status_code == 429 and reset.isdigit():
            wait = max(0.0, int(reset) - now.timestamp())
        raise for_status(source, what, response.status_code, response.text, wait)
    try:
        return json.loads(response.content) if response.content.strip() else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise Retryable(f"{source} answered {what} with something that is not JSON") from None
