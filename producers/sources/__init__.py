"""Source pollers, one module each, and the HTTP plumbing the HTTP sources share.

:class:`HttpApi` turns HTTP outcomes into the errors the poller base acts on:

========================  ====================================================
response                  raised
========================  ====================================================
timeout, connect error    :class:`~producers.exceptions.RecoverableError` (backoff)
429                       RecoverableError with ``retry_after`` from ``Retry-After``
5xx                       RecoverableError (``Retry-After`` honoured when sent)
401, 403                  :class:`AccessDenied` — fix the token or its scopes
404                       :class:`NotFound` (an :class:`ApiRejected`) — the object is gone
other 4xx                 :class:`ApiRejected` — fix the configuration (org, project …)
2xx, body not JSON        :class:`~producers.base.MalformedPayload` — dead-lettered
========================  ====================================================

Every 4xx error carries its ``status``.  A stream that reads one object at a
time (one issue's latest event, one query) catches them per object and applies
the rules of :mod:`producers.sources.objects`; a status listed in ``accept`` is
decoded like a 2xx (Grafana answers a failed query with 400 and a JSON body).

A source may pass ``rate_headers``: called with every response's headers, it
returns how long the source must pause because the server's own budget is
spent (Sentry's ``X-Sentry-Rate-Limit-*``); a 429 without ``Retry-After``
then waits that long, and a 2xx with no budget left holds the token bucket.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from producers.base import MalformedPayload, SourceContext
from producers.exceptions import ProducerError, RecoverableError
from producers.ratelimit import parse_retry_after

log = logging.getLogger(__name__)

Params = Mapping[str, str | int] | Sequence[tuple[str, str]]
RateHeaders = Callable[[httpx.Headers, datetime], float | None]
"""``(headers, now) -> seconds to pause`` when the server says the budget is spent, else None."""


class AccessDenied(ProducerError):
    """401/403: the token is missing, expired or lacks a scope.  Operator: see docs/sources.md."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ApiRejected(ProducerError):
    """Another 4xx: the request itself is wrong (unknown org, project, datasource …)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotFound(ApiRejected):
    """404: the object asked for does not exist (any more): a pod deleted after the list, an issue's
    event not stored yet.  Streams skip that object (:mod:`producers.sources.objects`)."""

    def __init__(self, message: str, status: int | None = 404) -> None:
        super().__init__(message, status)


@dataclass(frozen=True)
class JsonResponse:
    body: Any
    headers: httpx.Headers
    raw: bytes
    status: int = 200


class HttpApi:
    """JSON over one ``httpx.AsyncClient`` under a source's rate limit and retry policy."""

    def __init__(
        self, client: httpx.AsyncClient, ctx: SourceContext, rate_headers: RateHeaders | None = None
    ) -> None:
        self.client, self.ctx, self.rate_headers = client, ctx, rate_headers

    async def get(self, stream: str, path: str, params: Params | None = None) -> JsonResponse:
        return await self.request(stream, "GET", path, params=params)

    async def request(
        self, stream: str, method: str, path: str, *, params: Params | None = None, body: Any = None,
        accept: Collection[int] = (),
    ) -> JsonResponse:
        """Send until a 2xx (or a status in ``accept``) arrives and decode JSON; see the module table."""

        pairs = params.items() if isinstance(params, Mapping) else (params or ())
        query: list[tuple[str, str | int | float | bool | None]] = [(k, str(v)) for k, v in pairs]

        async def once() -> JsonResponse:
            try:
                response = await self.client.request(method, path, params=query, json=body)
            except httpx.TimeoutException as exc:
                raise RecoverableError(f"{method} {path}: timed out ({type(exc).__name__})") from exc
            except httpx.TransportError as exc:
                raise RecoverableError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
            return self._decode(method, path, response, accept)

        return await self.ctx.call(stream, once)

    def _budget(self, headers: httpx.Headers) -> float | None:
        if self.rate_headers is None:
            return None
        wait = self.rate_headers(headers, self.ctx.clock.now())
        return None if wait is None else min(wait, self.ctx.backoff.cap)

    def _decode(
        self, method: str, path: str, response: httpx.Response, accept: Collection[int] = ()
    ) -> JsonResponse:
        status = response.status_code
        where = f"{method} {path} -> {status}"
        budget = self._budget(response.headers)
        if status == 429 or status >= 500:
            wait = parse_retry_after(response.headers.get("Retry-After"), self.ctx.clock.now())
            raise RecoverableError(where, retry_after=wait if wait is not None else budget)
        if budget is not None:
            log.info("%s: the server's rate-limit budget is spent; pausing %.1fs", where, budget)
            self.ctx.limiter.defer(budget)
        if status in (401, 403) and status not in accept:
            raise AccessDenied(f"{where}: {response.text[:200]}", status)
        if status == 404 and status not in accept:
            raise NotFound(f"{where}: {response.text[:200]}")
        if status >= 400 and status not in accept:
            raise ApiRejected(f"{where}: {response.text[:200]}", status)
        raw = response.content
        try:
            body = json.loads(raw) if raw.strip() else None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise MalformedPayload(f"{where}: response is not JSON ({exc})", raw[:65536]) from None
        return JsonResponse(body, response.headers, raw, status)


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
