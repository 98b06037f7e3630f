"""Kubernetes through the official ``kubernetes`` client: pods, events, logs, pod metrics, rollouts.

One set of streams per (context, namespace); ``*`` means all namespaces.
Cursor keys ``kubernetes/KIND:CONTEXT:NAMESPACE``:

* ``pods`` — problem containers (CrashLoopBackOff, ImagePullBackOff, OOMKilled …);
  cursor ``{seen: {ns/pod/container: "REASON:RESTARTS"}}``, so a problem is
  published once per (reason, restart count).
* ``events`` — a watch from the cursor's ``{rv}``; no cursor or ``410 Gone``
  relists (publishing the listed events; their ids are stable) and resumes
  from the list's resourceVersion.
* ``logs`` — ``timestamps=true`` logs of running containers after the cursor's
  last timestamp per container, at most ``log_tail_lines`` lines per call.
* ``metrics`` — ``metrics.k8s.io/v1beta1`` PodMetrics; switched off (logged
  once) when the API is not served.  Cursor ``{seen: {ns/pod: TIMESTAMP}}``: a
  sample no newer than the pod's last published one is skipped, so a restart
  does not publish the current sample again.
* ``deployments`` — a ``deploy`` Event when ``deployment.kubernetes.io/revision``
  changes; the first poll only records revisions.

Calls are blocking client calls run in a worker thread, with raw JSON
(``_preload_content=False``) so payloads that do not parse are dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from producers.base import Batch, Rejected, SourceContext, Stream
from producers.config import KubernetesConfig
from producers.cursors import Cursor
from producers.mapping import ServiceMapper
from producers.sources import AccessDenied, ApiRejected, compact_json
from producers.sources import kubernetes_map as km
from producers.sources.kubernetes_api import Gone, KubeApi, api_clients, items_of
from producers.sources.objects import ObjectGuard, Verdict, failure_of
from schemas.models import Event

__all__ = ["Gone", "KubeApi", "api_clients", "open_streams"]

log = logging.getLogger(__name__)


def _ns_call(ns: str, all_ns: Callable[..., Any], one_ns: Callable[..., Any]) -> tuple[Any, ...]:
    return (all_ns,) if ns == "*" else (one_ns, ns)


class _KubeStream:
    kind = ""

    def __init__(self, api: KubeApi, ns: str, mapper: ServiceMapper, services: dict[str, str]) -> None:
        self.api, self.ns, self.mapper, self.services = api, ns, mapper, services
        self.name = f"{self.kind}:{api.name}:{ns}"

    async def _pods(self) -> list[dict[str, Any]]:
        fn = _ns_call(self.ns, self.api.core.list_pod_for_all_namespaces, self.api.core.list_namespaced_pod)
        selector: dict[str, Any] = {}
        if self.api.cfg.label_selector:
            selector["label_selector"] = self.api.cfg.label_selector
        pods = items_of(await self.api.list_all(self.name, *fn, **selector))
        for pod in pods:
            meta = pod.get("metadata") or {}
            self.services[f"{meta.get('namespace')}/{meta.get('name')}"] = km.pod_service(self.mapper, pod)
        return pods


class PodsStream(_KubeStream):
    kind = "pods"

    async def fetch(self, cursor: Cursor | None) -> Batch:
        seen = dict((cursor or {}).get("seen", {}))
        now = self.api.ctx.clock.now()
        current: dict[str, str] = {}
        events: list[Event] = []
        rejected: list[Rejected] = []
        for pod in await self._pods():
            try:
                meta = pod["metadata"]
                for problem in km.pod_problems(pod):
                    key = f"{meta.get('namespace')}/{meta['name']}/{problem.container}"
                    current[key] = problem.fingerprint
                    if seen.get(key) != problem.fingerprint:
                        service = km.pod_service(self.mapper, pod)
                        events.append(km.problem_event(self.api.name, pod, problem, service, now))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                rejected.append(Rejected(f"pod not understood: {exc!r}", compact_json(pod)))
        return Batch(events, rejected, {"seen": current} if current != seen else None)


class EventsStream(_KubeStream):
    kind = "events"

    async def fetch(self, cursor: Cursor | None) -> Batch:
        if cursor and cursor.get("rv"):
            try:
                raw = await self.api.ctx.call(
                    self.name, lambda: asyncio.to_thread(self.api.watch_events, self.ns, str(cursor["rv"]))
                )
                return self._batch([(r["type"], r["object"]) for r in raw], str(cursor["rv"]))
            except Gone:
                log.info("%s: resourceVersion %s expired (410 Gone); relisting", self.name, cursor["rv"])
        fn = _ns_call(
            self.ns, self.api.core.list_event_for_all_namespaces, self.api.core.list_namespaced_event
        )
        body = await self.api.list_all(self.name, *fn)
        listed = [("ADDED", item) for item in items_of(body)]
        return self._batch(
            listed, str((body.get("metadata") or {}).get("resourceVersion") or ""), relist=True
        )

    def _batch(self, items: list[tuple[str, Any]], rv: str, relist: bool = False) -> Batch:
        events: list[Event] = []
        rejected: list[Rejected] = []
        for kind, obj in items:
            if kind == "MALFORMED":
                reason = "watch line is not JSON (the client does not keep its text)"
                rejected.append(Rejected(reason, b"", "invalid_json"))
                continue
            try:
                if not relist:
                    rv = str(obj["metadata"]["resourceVersion"])
                if kind not in ("ADDED", "MODIFIED"):
                    continue
                involved = obj.get("involvedObject") or {}
                key = f"{involved.get('namespace')}/{involved.get('name')}"
                service = self.services.get(key) or self.mapper.for_k8s(None, involved.get("name"))
                events.append(km.event_event(self.api.name, obj, service))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                rejected.append(Rejected(f"event not understood: {exc!r}", compact_json(obj)))
        return Batch(events, rejected, {"rv": rv} if rv else None)


class LogsStream(_KubeStream):
    """Logs of running containers; one container that cannot be read never stops the others.

    Per container (``ns/pod/container``, :mod:`producers.sources.objects`): a 404
    (the pod was deleted after the list) skips it and drops it from the cursor; a
    400 (a container still waiting to start) keeps its cursor and retries next
    cycle, then parks it; a 403 parks it at once.  A parked container keeps its
    cursor, so when it is read again nothing after its last line is missed.
    """

    kind = "logs"

    def __init__(self, api: KubeApi, ns: str, mapper: ServiceMapper, services: dict[str, str]) -> None:
        super().__init__(api, ns, mapper, services)
        self.guard = ObjectGuard(api.ctx, self.name)

    async def fetch(self, cursor: Cursor | None) -> Batch:
        since: dict[str, str] = dict((cursor or {}).get("since", {}))
        running = [p for p in await self._pods() if (p.get("status") or {}).get("phase") == "Running"]
        targets = [(p, c["name"]) for p in running for c in (p.get("spec") or {}).get("containers", [])]
        events: list[Event] = []
        rejected: list[Rejected] = []
        after: dict[str, str] = {}
        for pod, container in targets[: self.api.cfg.log_max_containers]:
            meta = pod["metadata"]
            key = f"{meta['namespace']}/{meta['name']}/{container}"
            newest: str | None = since.get(key)
            if not self.guard.parked(key):
                try:
                    newest = await self._read(pod, container, since.get(key), events, rejected)
                    self.guard.succeeded(key)
                except (ApiRejected, AccessDenied) as exc:
                    failure = failure_of(exc)
                    if failure is None:
                        raise
                    verdict, letter = self.guard.failed(key, failure, str(exc))
                    rejected.extend([letter] if letter else [])
                    if verdict is Verdict.SKIP:
                        newest = None
            if newest is not None:
                after[key] = newest
        return Batch(events, rejected, {"since": after} if after != since else None)

    async def _read(
        self,
        pod: dict[str, Any],
        container: str,
        last: str | None,
        events: list[Event],
        rejected: list[Rejected],
    ) -> str | None:
        """Append the lines after ``last``; return the newest timestamp read (or ``last``)."""
        meta, cfg = pod["metadata"], self.api.cfg
        ns, name = meta["namespace"], meta["name"]
        extra: dict[str, Any] = {"tail_lines": cfg.log_tail_lines, "timestamps": True, "container": container}
        if last:
            age = self.api.ctx.clock.now().timestamp() - km.parse_k8s_time(last).timestamp()
            extra["since_seconds"] = max(1, math.ceil(age) + 1)
        raw = await self.api.call(self.name, self.api.core.read_namespaced_pod_log, name, ns, **extra)
        service = km.pod_service(self.mapper, pod)
        newest = last
        for line in raw.decode("utf-8", errors="replace").splitlines():
            try:
                stamp, text = km.split_log_line(line)
            except ValueError as exc:
                rejected.append(Rejected(f"{ns}/{name}/{container}: {exc}", line.encode()[:65536]))
                continue
            if last is None or km.stamp_ns(stamp) > km.stamp_ns(last):
                events.append(km.log_event(self.api.name, ns, name, container, stamp, text, service))
                if newest is None or km.stamp_ns(stamp) > km.stamp_ns(newest):
                    newest = stamp
        return newest


class MetricsStream(_KubeStream):
    kind = "metrics"
    served = True

    async def fetch(self, cursor: Cursor | None) -> Batch:
        if not self.served:
            return Batch()
        c = self.api.custom
        fn = (
            (c.list_cluster_custom_object, "metrics.k8s.io", "v1beta1", "pods")
            if self.ns == "*"
            else (c.list_namespaced_custom_object, "metrics.k8s.io", "v1beta1", self.ns, "pods")
        )
        try:
            body = await self.api.json(self.name, *fn)
        except ApiRejected as exc:
            log.warning("%s: metrics.k8s.io not served (%s); pod metrics off", self.name, exc)
            self.served = False
            return Batch()
        seen: dict[str, str] = dict((cursor or {}).get("seen", {}))
        current: dict[str, str] = {}
        events: list[Event] = []
        rejected: list[Rejected] = []
        for item in items_of(body):
            try:
                meta = item["metadata"]
                key = f"{meta['namespace']}/{meta['name']}"
                stamp, last = str(item["timestamp"]), seen.get(key)
                if last is not None and km.parse_k8s_time(stamp) <= km.parse_k8s_time(last):
                    current[key] = last  # this sample (or a newer one) was published before
                    continue
                service = self.services.get(key) or self.mapper.for_k8s(meta.get("labels"), meta["name"])
                events.extend(km.pod_metric_events(self.api.name, item, service))
                current[key] = stamp
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                rejected.append(Rejected(f"pod metrics not understood: {exc!r}", compact_json(item)))
        return Batch(events, rejected, {"seen": current} if current != seen else None)


class DeploymentsStream(_KubeStream):
    kind = "deployments"

    async def fetch(self, cursor: Cursor | None) -> Batch:
        a = self.api.apps
        fn = _ns_call(self.ns, a.list_deployment_for_all_namespaces, a.list_namespaced_deployment)
        selector: dict[str, Any] = {}
        if self.api.cfg.label_selector:
            selector["label_selector"] = self.api.cfg.label_selector
        known = (cursor or {}).get("revisions")
        now = self.api.ctx.clock.now()
        revisions: dict[str, str] = {}
        events: list[Event] = []
        rejected: list[Rejected] = []
        for dep in items_of(await self.api.list_all(self.name, *fn, **selector)):
            try:
                meta = dep["metadata"]
                rev = str((meta.get("annotations") or {}).get("deployment.kubernetes.io/revision") or "")
                key = f"{meta.get('namespace')}/{meta['name']}"
                revisions[key] = rev
                if known is not None and rev and known.get(key) != rev:
                    service = self.mapper.for_k8s(meta.get("labels"), meta["name"])
                    events.append(km.rollout_event(self.api.name, dep, rev, service, now))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                rejected.append(Rejected(f"deployment not understood: {exc!r}", compact_json(dep)))
        return Batch(events, rejected, {"revisions": revisions} if revisions != known else None)


@asynccontextmanager
async def open_streams(
    cfg: KubernetesConfig, ctx: SourceContext, mapper: ServiceMapper, environ: Mapping[str, str]
) -> AsyncIterator[list[Stream]]:
    """Streams for every (context, namespace); closes the API clients on exit."""
    clients = api_clients(cfg)
    kinds = [
        k
        for k, on in (
            (PodsStream, cfg.pods),
            (EventsStream, cfg.events),
            (LogsStream, cfg.logs),
            (MetricsStream, cfg.metrics),
            (DeploymentsStream, cfg.deployments),
        )
        if on
    ]
    streams: list[Stream] = []
    for name, api_client in clients:
        api, services = KubeApi(name, api_client, ctx, cfg), dict[str, str]()
        for ns in cfg.namespaces or ("*",):
            streams.extend(kind(api, ns, mapper, services) for kind in kinds)
    try:
        yield streams
    finally:
        for _, api_client in clients:
            api_client.close()
