"""Source pollers, one module each, and the HTTP plumbing the HTTP sources share.

:class:`HttpApi` turns HTTP outcomes into the errors the poller base acts on:

========================  ====================================================
response                  raised
========================  ====================================================
timeout, connect error    :class:`~producers.exceptions.RecoverableError` (backoff)
429                       RecoverableError with ``retry_after`` from ``Retry-After``
5xx                       RecoverableError (``Retry-After`` honoured when sent)
401, 403                  :class:`AccessDenied` — fix the token or its scopes
other 4xx                 :class:`ApiRejected` — fix the configuration (org, project …)
2xx, body not JSON        :class:`~producers.base.MalformedPayload` — dead-lettered
========================  ====================================================
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from producers.base import MalformedPayload, SourceContext
from producers.exceptions import ProducerError, RecoverableError
from producers.ratelimit import parse_retry_after

Params = Mapping[str, str | int] | Sequence[tuple[str, str]]


class AccessDenied(ProducerError):
    """401/403: the token is missing, expired or lacks a scope.  Operator: see docs/sources.md."""


class ApiRejected(ProducerError):
    """Another 4xx: the request itself is wrong (unknown org, project, datasource …)."""


@dataclass(frozen=True)
class JsonResponse:
    body: Any
    headers: httpx.Headers
    raw: bytes


class HttpApi:
    """JSON over one ``httpx.AsyncClient`` under a source's rate limit and retry policy."""

    def __init__(self, client: httpx.AsyncClient, ctx: SourceContext) -> None:
        self.client, self.ctx = client, ctx

    async def get(self, stream: str, path: str, params: Params | None = None) -> JsonResponse:
        return await self.request(stream, "GET", path, params=params)

    async def request(
        self, stream: str, method: str, path: str, *, params: Params | None = None, body: Any = None
    ) -> JsonResponse:
        """Send until a 2xx arrives (see the module table for every other outcome) and decode JSON."""

        pairs = params.items() if isinstance(params, Mapping) else (params or ())
        query: list[tuple[str, str | int | float | bool | None]] = [(k, str(v)) for k, v in pairs]

        async def once() -> JsonResponse:
            try:
                response = await self.client.request(method, path, params=query, json=body)
            except httpx.TimeoutException as exc:
                raise RecoverableError(f"{method} {path}: timed out ({type(exc).__name__})") from exc
            except httpx.TransportError as exc:
                raise RecoverableError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
            return self._decode(method, path, response)

        return await self.ctx.call(stream, once)

    def _decode(self, method: str, path: str, response: httpx.Response) -> JsonResponse:
        status = response.status_code
        where = f"{method} {path} -> {status}"
        if status == 429 or status >= 500:
            wait = parse_retry_after(response.headers.get("Retry-After"), self.ctx.clock.now())
            raise RecoverableError(where, retry_after=wait)
        if status in (401, 403):
            raise AccessDenied(f"{where}: {response.text[:200]}")
        if status >= 400:
            raise ApiRejected(f"{where}: {response.text[:200]}")
        raw = response.content
        try:
            body = json.loads(raw) if raw.strip() else None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise MalformedPayload(f"{where}: response is not JSON ({exc})", raw[:65536]) from None
        return JsonResponse(body, response.headers, raw)


def build_client(
    base_url: str, token: str | None, headers: Mapping[str, str] | None = None, timeout: float = 15.0
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` with a bearer token; the caller closes it."""
    merged = {"Accept": "application/json", "User-Agent": "seismo-poller", **(headers or {})}
    if token:
        merged["Authorization"] = f"Bearer {token}"
    return httpx.AsyncClient(base_url=base_url.rstrip("/"), headers=merged, timeout=timeout)


def parse_time(value: Any) -> datetime:
    """An RFC 3339 string or epoch milliseconds as aware UTC; raise ValueError for anything else."""
    if isinstance(value, bool):
        raise ValueError(f"not a timestamp: {value!r}")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000.0, UTC)
    if isinstance(value, str) and value:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise ValueError(f"not a timestamp: {value!r}")


def iso(value: datetime) -> str:
    """RFC 3339 with a ``Z``, as the cursors store times."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def compact_json(value: Any) -> bytes:
    """The bytes stored as a dead letter's payload for one rejected item."""
    return json.dumps(value, sort_keys=True, default=str).encode("utf-8")[:65536]
