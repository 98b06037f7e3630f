"""One Kubernetes context's API for the poller: rate-limited calls, ``Status`` errors, paged lists, watches.

Blocking client calls run in a worker thread under the source's rate limit
and retries, with raw JSON (``_preload_content=False``) so payloads that do not
parse are dead-lettered.  A failed call answers a ``Status`` object
(``kind: Status``, ``status: Failure``, ``reason``, ``message``, ``code``;
https://kubernetes.io/docs/reference/using-api/api-concepts/ "Receiving lots
of resources" and "Efficient detection of changes"); :meth:`KubeApi.translate`
maps its ``code`` to the error the poller acts on:

=====  ============================================  ======================================
code   reason (examples)                             raised
=====  ============================================  ======================================
404    NotFound: ``pods "web-1" not found``          :class:`~producers.sources.NotFound`
400    BadRequest: ``container "web" in pod ...      :class:`~producers.sources.ApiRejected`
       is waiting to start: ContainerCreating``
401    Unauthorized                                  :class:`~producers.sources.AccessDenied`
403    Forbidden: ``... cannot get resource          :class:`~producers.sources.AccessDenied`
       "pods/log" ...``                              (``status`` 403)
410    Expired: ``too old resource version``, an     :class:`Gone`
       expired ``continue`` token
429    TooManyRequests (``Retry-After``), 5xx        RecoverableError (backoff)
=====  ============================================  ======================================

Lists are read in pages of ``limit`` objects following ``metadata.continue``;
a continue token that expired (410) restarts the list once from the beginning.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import urllib3
from kubernetes import client, config, watch  # type: ignore[import-untyped]
from kubernetes.client.rest import ApiException  # type: ignore[import-untyped]

from producers.base import MalformedPayload, SourceContext
from producers.config import KubernetesConfig
from producers.exceptions import ProducerError, RecoverableError
from producers.ratelimit import parse_retry_after
from producers.sources import AccessDenied, ApiRejected, NotFound, compact_json

log = logging.getLogger(__name__)

LIST_PAGE = 500
"""Objects per list request (``limit``); the rest follows through ``continue``."""


class Gone(ProducerError):
    """410: the watch's resourceVersion (or a list's continue token) is too old; relist."""


def status_message(exc: ApiException) -> str:
    """``reason: message`` of the ``Status`` object in an error response, or the HTTP reason."""
    try:
        body = json.loads(exc.body) if exc.body else None
    except (TypeError, ValueError):
        body = None
    if isinstance(body, dict) and body.get("kind") == "Status":
        return f"{body.get('reason') or exc.reason}: {body.get('message') or ''}".strip()
    return str(exc.reason or "")


class KubeApi:
    """One context's API, called under the source's rate limit and retries."""

    def __init__(self, name: str, api_client: Any, ctx: SourceContext, cfg: KubernetesConfig) -> None:
        self.name, self.api_client, self.ctx, self.cfg = name, api_client, ctx, cfg
        self.core, self.apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)

    def translate(self, exc: ApiException) -> Exception:
        """The error the poller acts on for a failed call (see the module table)."""
        where = f"kubernetes {self.name}: {exc.status} {status_message(exc)}"
        if exc.status == 410:
            return Gone(where)
        if exc.status == 429 or (exc.status or 0) >= 500:
            wait = parse_retry_after((exc.headers or {}).get("Retry-After"), self.ctx.clock.now())
            return RecoverableError(where, retry_after=wait)
        if exc.status in (401, 403):
            return AccessDenied(
                f"{where}: the ClusterRole in docs/sources.md grants what the poller reads", exc.status
            )
        if exc.status == 404:
            return NotFound(where)
        return ApiRejected(where, exc.status)

    _translate = translate  # the earlier private name

    async def call(self, stream: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> bytes:
        """Raw response body of ``fn(*args, **kwargs)``; errors translated as in the module table."""

        def blocking() -> bytes:
            try:
                return bytes(
                    fn(*args, _preload_content=False, _request_timeout=self.cfg.timeout_s, **kwargs).data
                )
            except ApiException as exc:
                raise self.translate(exc) from None
            except urllib3.exceptions.HTTPError as exc:
                raise RecoverableError(f"kubernetes {self.name}: {type(exc).__name__}: {exc}") from exc

        return await self.ctx.call(stream, lambda: asyncio.to_thread(blocking))

    async def json(self, stream: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        raw = await self.call(stream, fn, *args, **kwargs)
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise MalformedPayload(
                f"kubernetes {self.name}: response is not JSON ({exc})", raw[:65536]
            ) from None

    async def list_all(
        self, stream: str, fn: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> dict[str, Any]:
        """Every page of a list call (``limit`` + ``continue``) as one list body.

        The result's ``metadata.resourceVersion`` is the first page's (a paged list is
        one consistent snapshot).  An expired continue token (410) restarts the list
        once; a second 410 raises :class:`Gone`.
        """
        for attempt in range(2):
            items: list[Any] = []
            first: dict[str, Any] | None = None
            token: str | None = None
            try:
                while True:
                    extra = {"limit": LIST_PAGE, **({"_continue": token} if token else {})}
                    body = await self.json(stream, fn, *args, **kwargs, **extra)
                    items.extend(items_of(body))
                    first = first or body
                    token = (body.get("metadata") or {}).get("continue") or None
                    if not token:
                        return {**first, "items": items}
            except Gone:
                if attempt or token is None:
                    raise
                log.info("%s: the list's continue token expired (410); listing again", stream)
        raise AssertionError("unreachable")

    def watch_events(self, ns: str, rv: str, limit: int = 500) -> list[dict[str, Any]]:
        """Blocking: the events after ``rv`` until the server ends the watch (``watch_timeout_s``).

        With ``allowWatchBookmarks`` the server may send ``BOOKMARK`` items (only
        ``metadata.resourceVersion``): they advance the cursor without an event.
        """
        fn, args = (
            (self.core.list_event_for_all_namespaces, ())
            if ns == "*"
            else (self.core.list_namespaced_event, (ns,))
        )
        w, out = watch.Watch(), []
        try:
            for item in w.stream(
                fn,
                *args,
                resource_version=rv,
                timeout_seconds=self.cfg.watch_timeout_s,
                allow_watch_bookmarks=True,
                _request_timeout=self.cfg.watch_timeout_s + 5,
            ):
                if item is None:  # the client yields None for a line that is not JSON
                    out.append({"type": "MALFORMED", "object": None})
                    continue
                out.append({"type": item["type"], "object": item["raw_object"]})
                if len(out) >= limit:
                    w.stop()
        except ApiException as exc:
            raise self.translate(exc) from None
        except json.JSONDecodeError as exc:
            raise MalformedPayload(
                f"kubernetes {self.name}: watch line is not JSON ({exc})", exc.doc.encode()[:65536]
            ) from None
        except urllib3.exceptions.HTTPError as exc:
            raise RecoverableError(f"kubernetes {self.name}: watch: {exc}") from exc
        return out


def items_of(body: Any) -> list[dict[str, Any]]:
    """The ``items`` of a list response; raise MalformedPayload when it has none."""
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise MalformedPayload("list response has no 'items' list", compact_json(body))
    return [i for i in items if isinstance(i, dict)]


def api_clients(cfg: KubernetesConfig) -> list[tuple[str, Any]]:
    """(context name, ApiClient) per configured context; in-cluster config when ``in_cluster``."""
    if cfg.in_cluster:
        conf = client.Configuration()
        config.load_incluster_config(client_configuration=conf)
        conf.retries = False  # 429/5xx must reach Seismo's rate limiter and backoff, not urllib3's
        return [("in-cluster", client.ApiClient(conf))]
    path = str(cfg.kubeconfig) if cfg.kubeconfig else None
    names = list(cfg.contexts) or [config.list_kube_config_contexts(config_file=path)[1]["name"]]
    out = []
    for name in names:
        conf = client.Configuration()
        config.load_kube_config(config_file=path, context=name, client_configuration=conf)
        conf.retries = False  # 429/5xx must reach Seismo's rate limiter and backoff, not urllib3's
        out.append((name, client.ApiClient(conf)))
    return out
