"""Kubernetes live tools over the pollers' API clients (:func:`producers.sources.kubernetes.api_clients`).

Reads only: pods (list, get), events, pod logs, metrics.k8s.io usage and a
Deployment's ReplicaSets (rollout history).  Client calls block, so they run in
a worker thread, with raw JSON (``_preload_content=False``).  Namespaces are
limited to the config's ``namespaces`` when it lists any.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import urllib3
from kubernetes import client  # type: ignore[import-untyped]
from kubernetes.client.rest import ApiException  # type: ignore[import-untyped]
from mcp.server.mcpserver import MCPServer
from pydantic import Field

from mcp_gateway.live.errors import Rejected, Retryable, for_status
from mcp_gateway.live.guard import SourceGuard
from mcp_gateway.live.shape import Compact, Listing, Untrusted, add_tools, fence, fence_tail, ident, listing
from producers.config import KubernetesConfig
from producers.ratelimit import parse_retry_after
from producers.sources.kubernetes import api_clients
from producers.sources.kubernetes_map import parse_k8s_time, pod_problems, quantity

MaxItems = Annotated[int, Field(ge=1, le=500)]
Minutes = Annotated[int, Field(ge=1, le=10080)]
GREP_SCAN = 10_000


class Pod(Compact):
    namespace: str
    name: str
    phase: str
    ready: str
    restarts: int
    node: str | None = None
    problems: list[str] = []


class PodList(Listing[Pod]):
    pass


class Container(Compact):
    name: str
    image: str
    ready: bool
    restarts: int
    state: str
    last_state: str | None = None


class PodDetail(Pod):
    containers: list[Container]
    conditions: list[str]
    labels: dict[str, str]


class K8sEvent(Compact):
    time: str | None
    type: str
    reason: str
    object: str
    count: int
    message: Untrusted


class EventList(Listing[K8sEvent]):
    pass


class PodLogs(Compact):
    pod: str
    container: str | None
    lines: int
    omitted: int
    text: Untrusted


class Usage(Compact):
    pod: str
    container: str
    cpu_millicores: float
    memory_mib: float


class UsageList(Listing[Usage]):
    pass


class Revision(Compact):
    revision: int
    replicaset: str
    created: str | None
    images: list[str]
    replicas: int
    change_cause: str | None = None


class RolloutHistory(Compact):
    deployment: str
    current_revision: int | None
    revisions: list[Revision]


def _state(s: dict[str, Any] | None) -> str:
    for name, detail in (s or {}).items():
        reason = (detail or {}).get("reason")
        return f"{name}:{reason}" if reason else name
    return "unknown"


def _pod(item: dict[str, Any]) -> Pod:
    meta, status = item.get("metadata") or {}, item.get("status") or {}
    cs = status.get("containerStatuses") or []
    return Pod(
        namespace=str(meta.get("namespace")), name=str(meta.get("name")),
        phase=str(status.get("phase") or "Unknown"),
        ready=f"{sum(bool(c.get('ready')) for c in cs)}/{len(cs)}",
        restarts=sum(int(c.get("restartCount") or 0) for c in cs),
        node=(item.get("spec") or {}).get("nodeName"),
        problems=[f"{p.container or 'pod'}: {p.reason}" for p in pod_problems(item)],
    )


def _detail(item: dict[str, Any]) -> PodDetail:
    status = item.get("status") or {}
    containers = [
        Container(name=str(c.get("name")), image=str(c.get("image")), ready=bool(c.get("ready")),
                  restarts=int(c.get("restartCount") or 0), state=_state(c.get("state")),
                  last_state=_state(c.get("lastState")) if c.get("lastState") else None)
        for c in status.get("containerStatuses") or []
    ]
    conditions = [f"{c.get('type')}={c.get('status')}" for c in status.get("conditions") or []]
    labels = {str(k): str(v) for k, v in ((item.get("metadata") or {}).get("labels") or {}).items()}
    return PodDetail(**_pod(item).model_dump(), containers=containers, conditions=conditions, labels=labels)


def _event(item: dict[str, Any]) -> K8sEvent:
    obj = item.get("involvedObject") or {}
    when = item.get("lastTimestamp") or item.get("eventTime") or (item.get("metadata") or {}).get(
        "creationTimestamp")
    return K8sEvent(time=when, type=str(item.get("type") or ""), reason=str(item.get("reason") or ""),
                    object=f"{obj.get('kind')}/{obj.get('name')}", count=int(item.get("count") or 1),
                    message=fence(str(item.get("message") or ""), 1000))


class KubeTools:
    """The API clients of every configured context and the calls the tools make."""

    def __init__(self, cfg: KubernetesConfig, guard: SourceGuard, max_chars: int) -> None:
        self.cfg, self.guard, self.max_chars = cfg, guard, max_chars
        self.clients: dict[str, Any] = dict(api_clients(cfg))
        self.default = next(iter(self.clients))

    def close(self) -> None:
        for api_client in self.clients.values():
            api_client.close()

    def _api(self, cluster: str | None, kind: Callable[[Any], Any]) -> Any:
        name = cluster or self.default
        if name not in self.clients:
            raise Rejected(f"unknown cluster {name[:80]!r}; configured: {', '.join(self.clients)}")
        return kind(self.clients[name])

    def namespace(self, ns: str) -> str:
        ident("k8s_name", ns)
        if self.cfg.namespaces and ns not in self.cfg.namespaces:
            raise Rejected(f"namespace {ns!r} is not configured; allowed: {', '.join(self.cfg.namespaces)}")
        return ns

    async def read(self, what: str, fn: Callable[..., Any], *args: Any, raw: bool = False,
                   **kwargs: Any) -> Any:
        """One GET in a worker thread; errors become tool errors (see :mod:`.errors`)."""

        def blocking() -> bytes:
            try:
                return bytes(fn(*args, _preload_content=False, _request_timeout=self.cfg.timeout_s,
                                **kwargs).data)
            except ApiException as exc:
                wait = parse_retry_after((exc.headers or {}).get("Retry-After"), datetime.now(UTC))
                status, body = int(exc.status or 0), str(exc.body or "")
                raise for_status("kubernetes", what, status, body, wait) from None
            except urllib3.exceptions.HTTPError as exc:
                raise Retryable(f"kubernetes is unreachable for {what} ({type(exc).__name__})") from None

        data = await asyncio.to_thread(blocking)
        if raw:
            return data.decode("utf-8", errors="replace")
        try:
            return json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise Retryable(f"kubernetes answered {what} with something that is not JSON") from None


def register(server: MCPServer, cfg: KubernetesConfig, guard: SourceGuard, max_chars: int,
             stack: ExitStack) -> set[str]:
    """Register the ``k8s_*`` tools; the API clients close with ``stack``."""
    kt = KubeTools(cfg, guard, max_chars)
    stack.callback(kt.close)

    async def k8s_list_pods(namespace: str, label_selector: str | None = None, problems_only: bool = False,
                            cluster: str | None = None, max_items: MaxItems = 50) -> PodList:
        """Pods of a namespace: phase, ready containers, restarts, problems (CrashLoopBackOff…)."""
        ns = kt.namespace(namespace)
        if label_selector is not None and not _SELECTOR.fullmatch(label_selector):
            raise Rejected("label_selector: use key=value terms separated by commas")
        core = kt._api(cluster, client.CoreV1Api)

        async def fetch() -> PodList:
            extra: dict[str, Any] = {"label_selector": label_selector} if label_selector else {}
            body = await kt.read(f"pods of {ns}", core.list_namespaced_pod, ns, **extra)
            pods = [_pod(i) for i in body.get("items") or []]
            if problems_only:
                pods = [p for p in pods if p.problems]
            pods.sort(key=lambda p: (not p.problems, -p.restarts, p.name))
            return listing(PodList, pods, max_items, max_chars, key=lambda p: p.phase)

        args = {"ns": ns, "sel": label_selector, "p": problems_only, "c": cluster, "n": max_items}
        return await guard.run("k8s_list_pods", args, PodList, fetch)

    async def k8s_get_pod(namespace: str, name: str, cluster: str | None = None) -> PodDetail:
        """One pod: containers with state, last state (e.g. OOMKilled), restarts, conditions, labels."""
        ns, pod = kt.namespace(namespace), ident("k8s_name", name)
        core = kt._api(cluster, client.CoreV1Api)

        async def fetch() -> PodDetail:
            return _detail(await kt.read(f"pod {ns}/{pod}", core.read_namespaced_pod, pod, ns))

        return await guard.run("k8s_get_pod", {"ns": ns, "pod": pod, "c": cluster}, PodDetail, fetch)

    async def k8s_events(namespace: str, object_name: str | None = None,
                         type: Literal["Warning", "Normal"] | None = None, since_minutes: Minutes = 60,
                         cluster: str | None = None, max_items: MaxItems = 50) -> EventList:
        """Events of a namespace, newest first; filter by involved object name and type."""
        ns = kt.namespace(namespace)
        obj = ident("k8s_name", object_name) if object_name else None
        core = kt._api(cluster, client.CoreV1Api)

        async def fetch() -> EventList:
            selector = ",".join(filter(None, [f"involvedObject.name={obj}" if obj else None,
                                              f"type={type}" if type else None]))
            extra: dict[str, Any] = {"field_selector": selector} if selector else {}
            body = await kt.read(f"events of {ns}", core.list_namespaced_event, ns, **extra)
            cutoff = datetime.now(UTC) - timedelta(minutes=since_minutes)
            items = [i for i in body.get("items") or []
                     if (not obj or (i.get("involvedObject") or {}).get("name") == obj)
                     and (not type or i.get("type") == type)]
            events = [e for e in map(_event, items) if e.time is None or parse_k8s_time(e.time) >= cutoff]
            events.sort(key=lambda e: e.time or "", reverse=True)
            return listing(EventList, events, max_items, max_chars, key=lambda e: e.reason)

        args = {"ns": ns, "o": obj, "t": type, "m": since_minutes, "c": cluster, "n": max_items}
        return await guard.run("k8s_events", args, EventList, fetch)

    async def k8s_pod_logs(namespace: str, pod: str, container: str | None = None,
                           since_minutes: Minutes | None = None,
                           tail_lines: Annotated[int, Field(ge=1, le=5000)] = 200,
                           grep: Annotated[str, Field(max_length=200)] | None = None,
                           previous: bool = False, cluster: str | None = None) -> PodLogs:
        """A container's last `tail_lines` log lines (with `grep`: the last that contain it, any case);
        `previous`: the crashed instance."""
        ns, name = kt.namespace(namespace), ident("k8s_name", pod)
        cont = ident("k8s_name", container) if container else None
        core = kt._api(cluster, client.CoreV1Api)

        async def fetch() -> PodLogs:
            read = GREP_SCAN if grep else tail_lines  # grep searches a longer tail, keeps `tail_lines`
            extra: dict[str, Any] = {"tail_lines": read, "timestamps": True, "previous": previous}
            if cont:
                extra["container"] = cont
            if since_minutes:
                extra["since_seconds"] = since_minutes * 60
            text = await kt.read(f"logs of {ns}/{name}", core.read_namespaced_pod_log, name, ns,
                                 raw=True, **extra)
            lines = text.splitlines()
            if grep:
                lines = [line for line in lines if grep.lower() in line.lower()][-tail_lines:]
            text, kept, omitted = fence_tail(lines, max_chars)
            return PodLogs(pod=f"{ns}/{name}", container=cont, lines=kept, omitted=omitted, text=text)

        args = {"ns": ns, "p": name, "ct": cont, "m": since_minutes, "t": tail_lines, "g": grep,
                "pr": previous, "c": cluster}
        return await guard.run("k8s_pod_logs", args, PodLogs, fetch)

    async def k8s_resource_usage(namespace: str, pod: str | None = None, cluster: str | None = None,
                                 max_items: MaxItems = 50) -> UsageList:
        """CPU and memory now per container (metrics.k8s.io), heaviest memory first."""
        ns = kt.namespace(namespace)
        name = ident("k8s_name", pod) if pod else None
        custom = kt._api(cluster, client.CustomObjectsApi)

        async def fetch() -> UsageList:
            group = ("metrics.k8s.io", "v1beta1", ns, "pods")
            if name:
                items = [await kt.read(f"usage of {ns}/{name}", custom.get_namespaced_custom_object,
                                       *group, name)]
            else:
                body = await kt.read(f"usage in {ns}", custom.list_namespaced_custom_object, *group)
                items = body.get("items") or []
            usage = [Usage(pod=str(i["metadata"]["name"]), container=str(c["name"]),
                           cpu_millicores=round(quantity(c["usage"]["cpu"]) * 1000, 1),
                           memory_mib=round(quantity(c["usage"]["memory"]) / 2**20, 1))
                     for i in items for c in i.get("containers") or []]
            usage.sort(key=lambda u: -u.memory_mib)
            return listing(UsageList, usage, max_items, max_chars, key=lambda u: u.pod)

        args = {"ns": ns, "p": name, "c": cluster, "n": max_items}
        return await guard.run("k8s_resource_usage", args, UsageList, fetch)

    async def k8s_rollout_history(namespace: str, deployment: str, cluster: str | None = None,
                                  max_items: MaxItems = 10) -> RolloutHistory:
        """A Deployment's revisions (its ReplicaSets), newest first, with images and change cause."""
        ns, dep = kt.namespace(namespace), ident("k8s_name", deployment)
        apps = kt._api(cluster, client.AppsV1Api)

        async def fetch() -> RolloutHistory:
            body = await kt.read(f"deployment {ns}/{dep}", apps.read_namespaced_deployment, dep, ns)
            match = ((body.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
            selector = ",".join(f"{k}={v}" for k, v in match.items())
            listed = await kt.read(f"replicasets of {ns}/{dep}", apps.list_namespaced_replica_set, ns,
                                   label_selector=selector)
            uid = (body.get("metadata") or {}).get("uid")
            revisions = [_revision(rs) for rs in listed.get("items") or []
                         if any(o.get("uid") == uid for o in (rs.get("metadata") or {}).get(
                             "ownerReferences") or [])]
            revisions.sort(key=lambda r: -r.revision)
            current = (body.get("metadata") or {}).get("annotations", {}).get(
                "deployment.kubernetes.io/revision")
            return RolloutHistory(deployment=f"{ns}/{dep}", revisions=revisions[:max_items],
                                  current_revision=int(current) if current else None)

        args = {"ns": ns, "d": dep, "c": cluster, "n": max_items}
        return await guard.run("k8s_rollout_history", args, RolloutHistory, fetch)

    tools: list[Callable[..., Any]] = [k8s_list_pods, k8s_get_pod, k8s_events, k8s_pod_logs,
                                       k8s_resource_usage, k8s_rollout_history]
    return add_tools(server, tools)


_SELECTOR = re.compile(r"^[A-Za-z0-9_./-]+(!?=[A-Za-z0-9_.-]*)?(,[A-Za-z0-9_./-]+(!?=[A-Za-z0-9_.-]*)?)*$")


def _revision(rs: dict[str, Any]) -> Revision:
    meta = rs.get("metadata") or {}
    notes = meta.get("annotations") or {}
    containers = (((rs.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    return Revision(revision=int(notes.get("deployment.kubernetes.io/revision") or 0),
                    replicaset=str(meta.get("name")), created=meta.get("creationTimestamp"),
                    images=[str(c.get("image")) for c in containers],
                    replicas=int((rs.get("status") or {}).get("replicas") or 0),
                    change_cause=notes.get("kubernetes.io/change-cause"))
