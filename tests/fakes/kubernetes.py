"""A fake Kubernetes API server for the official client: pods, events (list + blocking watch),
logs, metrics.k8s.io and deployments, with the API server's error shapes.

* Failures are ``Status`` objects (404 NotFound, 400 BadRequest, 403 Forbidden, 410 Expired).
* ``labelSelector`` is equality- and set-based (``in``, ``notin``, ``key``, ``!key``).
* Lists honour ``limit``/``continue``; a watch blocks until ``timeoutSeconds``, streams events
  added meanwhile, sends a BOOKMARK when ``allowWatchBookmarks``, and answers an ``rv`` older
  than ``oldest_rv`` with an ERROR event (410 Expired).
* Logs honour ``container``, ``tailLines`` and ``sinceSeconds`` and fail as the kubelet does
  for a deleted pod (404), a container still waiting to start (400) or a denied ``pods/log`` (403).

:func:`kubeconfig` writes a kubeconfig whose contexts point at fake servers over plain HTTP.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from tests.fakes import FakeHttpServer, Reply, Request, Write


def make_pod(
    name: str,
    ns: str,
    labels: dict[str, str],
    *,
    phase: str = "Running",
    waiting: str | None = None,
    last_terminated: str | None = None,
    restarts: int = 0,
) -> dict[str, Any]:
    state: dict[str, Any] = (
        {"waiting": {"reason": waiting, "message": "back-off 5m0s restarting failed container"}}
        if waiting
        else {"running": {"startedAt": "2024-05-01T11:00:00Z"}}
    )
    last = (
        {
            "terminated": {
                "reason": last_terminated,
                "exitCode": 137 if last_terminated == "OOMKilled" else 1,
                "startedAt": "2024-05-01T11:50:00Z",
                "finishedAt": "2024-05-01T11:51:00Z",
            }
        }
        if last_terminated
        else {}
    )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": labels,
            "uid": f"uid-{name}",
            "resourceVersion": "100",
            "creationTimestamp": "2024-05-01T11:00:00Z",
        },
        "spec": {"nodeName": "node-1", "containers": [{"name": labels.get("app", "main"), "image": "img:1"}]},
        "status": {
            "phase": phase,
            "containerStatuses": [
                {
                    "name": labels.get("app", "main"),
                    "ready": waiting is None,
                    "restartCount": restarts,
                    "image": "img:1",
                    "imageID": "sha256:abc",
                    "state": state,
                    "lastState": last,
                }
            ],
        },
    }


def make_k8s_event(
    uid: str, rv: int, pod: str, ns: str, reason: str, message: str, type_: str = "Warning", count: int = 1
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{pod}.{uid}",
            "namespace": ns,
            "uid": uid,
            "resourceVersion": str(rv),
            "creationTimestamp": "2024-05-01T11:58:00Z",
        },
        "involvedObject": {"kind": "Pod", "namespace": ns, "name": pod, "apiVersion": "v1"},
        "reason": reason,
        "message": message,
        "type": type_,
        "count": count,
        "firstTimestamp": "2024-05-01T11:58:00Z",
        "lastTimestamp": "2024-05-01T11:58:30Z",
        "source": {"component": "kubelet", "host": "node-1"},
    }


def make_deployment(name: str, ns: str, labels: dict[str, str], revision: int, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": labels,
            "uid": f"uid-{name}",
            "annotations": {"deployment.kubernetes.io/revision": str(revision)},
        },
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": name, "image": image}]},
            },
        },
        "status": {
            "replicas": 3,
            "readyReplicas": 2,
            "conditions": [{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}],
        },
    }


# Kubernetes answers every failed request with a ``Status`` object (kind Status, apiVersion v1,
# status Failure, message, reason, details, code): https://kubernetes.io/docs/reference/
# kubernetes-api/common-definitions/status/ and "Efficient detection of changes" in
# https://kubernetes.io/docs/reference/using-api/api-concepts/ .  The messages below are the
# API server's own wording for each case.
def status(code: int, reason: str, message: str, **details: str) -> dict[str, Any]:
    """A ``metav1.Status`` failure as the API server sends it (``reason`` is a StatusReason)."""
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": message, "reason": reason, "code": code}
    if details:
        body["details"] = details
    return body


def not_found(kind: str, name: str) -> Reply:
    return Reply(404, status(404, "NotFound", f'{kind} "{name}" not found', name=name, kind=kind))


def forbidden(resource: str, name: str, ns: str, user: str) -> Reply:
    message = (f'pods "{name}" is forbidden: User "{user}" cannot get resource "{resource}" '
               f'in API group "" in the namespace "{ns}"')
    return Reply(403, status(403, "Forbidden", message, name=name, kind="pods"))


def bad_request(message: str) -> Reply:
    return Reply(400, status(400, "BadRequest", message))


def expired(message: str) -> dict[str, Any]:
    return status(410, "Expired", message)


_TOO_OLD_CONTINUE = (
    "The provided continue parameter is too old to display a consistent list result. You can start a "
    "new list without the continue parameter, or use the continue token in this response to retrieve "
    "the remainder of the results. Continuing with the provided token results in an inconsistent list "
    "- objects that were created, modified, or deleted between the time the first chunk was returned "
    "and now may show up in the list."
)
# Containers in these waiting states have not started: the kubelet has no log to serve (400).
_NOT_STARTED = frozenset({"ContainerCreating", "PodInitializing"})
_TERM = re.compile(r"^\s*(?P<key>[^\s!=,()]+)\s*(?P<op>==|=|!=|\snotin\s|\sin\s)\s*(?P<value>.*?)\s*$")


def _terms(selector: str) -> list[str]:
    """A label selector split on the commas that are not inside ``( )``."""
    terms, depth, current = [], 0, ""
    for ch in selector:
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += ch
    return [t for t in [*terms, current] if t.strip()]


def matches(selector: str, labels: dict[str, str]) -> bool:
    """Whether ``labels`` satisfy a label selector, equality- and set-based
    (https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors):
    ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k`` (exists), ``!k``."""
    for term in _terms(selector):
        term = term.strip()
        if term.startswith("!"):
            if term[1:].strip() in labels:
                return False
            continue
        match = _TERM.match(f" {term} ".replace(" in(", " in (").replace(" notin(", " notin ("))
        if match is None:
            if term not in labels:
                return False
            continue
        key, op, value = match["key"], match["op"].strip(), match["value"]
        if op in ("in", "notin"):
            values = {v.strip() for v in value.strip("() ").split(",")}
            if (op == "in") != (key in labels and labels[key] in values):
                return False
        elif op == "!=":
            if labels.get(key) == value:
                return False
        elif labels.get(key) != value:
            return False
    return True


class FakeKubernetes(FakeHttpServer):
    """A fake API server.  ``deleted`` names pods (``ns/name``) still listed but gone when their log
    is read (deleted between list and read); ``forbidden_logs`` pods whose ``pods/log`` is denied;
    ``expire_continue`` makes that many ``continue`` tokens expire (410); ``now`` is the server's
    clock for ``sinceSeconds`` (share the test's clock); ``watch_bookmarks`` turns BOOKMARKs off."""

    def __init__(self) -> None:
        super().__init__()
        self.pods: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.deployments: list[dict[str, Any]] = []
        self.logs: dict[tuple[str, str, str], list[str]] = {}
        self.pod_metrics: list[dict[str, Any]] | None = None  # None: metrics.k8s.io not served
        self.oldest_rv = 0
        self.watch_lines: list[str] = []  # extra raw lines appended to every watch response
        self.replicasets: list[dict[str, Any]] = []
        self.deleted: set[str] = set()
        self.forbidden_logs: set[str] = set()
        self.expire_continue = 0
        self.watch_bookmarks = True
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)

    def handle(self, request: Request) -> Reply:
        p = request.path.strip("/").split("/")
        if p[:2] == ["api", "v1"] and p[-1] == "pods" and len(p) in (3, 5):
            return self._list(self._select(self._ns(self.pods, p), request), "PodList", request)
        if p[:2] == ["api", "v1"] and len(p) == 6 and p[4] == "pods":  # one pod
            return self._one(self._ns(self.pods, p), p[5])
        if p[:2] == ["api", "v1"] and p[-1] == "events":
            items = self._ns(self.events, p)
            if (request.param("watch") or "").lower() in ("true", "1"):
                return self._watch(p, int(request.param("resourceVersion") or 0), request)
            return self._list(items, "EventList", request)
        if p[:2] == ["api", "v1"] and p[-1] == "log":
            return self._log(p[3], p[5], request)
        if p[:3] == ["apis", "metrics.k8s.io", "v1beta1"]:
            if self.pod_metrics is None:
                # an aggregated API that is not registered: the server's plain 404 for an unknown path
                return Reply(404, status(404, "NotFound", "the server could not find the requested resource"))
            if len(p) == 7:  # one pod's metrics
                return self._one(self._ns(self.pod_metrics, p), p[6])
            return self._list(self._ns(self.pod_metrics, p), "PodMetricsList", request)
        if p[:3] == ["apis", "apps", "v1"] and p[-1] == "deployments":
            return self._list(self._select(self._ns(self.deployments, p), request), "DeploymentList", request)
        if p[:3] == ["apis", "apps", "v1"] and len(p) == 7 and p[5] == "deployments":  # one deployment
            return self._one(self._ns(self.deployments, p), p[6])
        if p[:3] == ["apis", "apps", "v1"] and p[-1] == "replicasets":
            return self._list(self._select(self._ns(self.replicasets, p), request), "ReplicaSetList", request)
        return Reply(404, status(404, "NotFound", "the server could not find the requested resource"))

    @staticmethod
    def _one(items: list[dict[str, Any]], name: str) -> Reply:
        found = [i for i in items if i["metadata"]["name"] == name]
        if found:
            return Reply(200, found[0])
        return Reply(404, status(404, "NotFound", f'"{name}" not found'))

    @staticmethod
    def _ns(items: list[dict[str, Any]], parts: list[str]) -> list[dict[str, Any]]:
        if "namespaces" in parts:
            ns = parts[parts.index("namespaces") + 1]
            return [i for i in items if i["metadata"].get("namespace") == ns]
        return items

    @staticmethod
    def _select(items: list[dict[str, Any]], request: Request) -> list[dict[str, Any]]:
        selector = request.param("labelSelector") or ""
        return [i for i in items if matches(selector, i["metadata"].get("labels") or {})]

    def _rv(self) -> str:
        return str(max([int(e["metadata"]["resourceVersion"]) for e in self.events] or [1]))

    def _list(self, items: list[dict[str, Any]], kind: str, request: Request) -> Reply:
        """A list; with ``limit`` one chunk and ``metadata.continue`` for the rest ("Retrieving large
        results sets in chunks" in api-concepts): an opaque token, 410 Expired once it is too old."""
        meta: dict[str, Any] = {"resourceVersion": self._rv()}
        start, token = 0, request.param("continue")
        if token:
            with self._lock:
                if self.expire_continue > 0:
                    self.expire_continue -= 1
                    return Reply(410, expired(_TOO_OLD_CONTINUE))
            state = json.loads(base64.urlsafe_b64decode(token))
            start, meta["resourceVersion"] = int(state["start"]), state["rv"]
        limit = int(request.param("limit") or 0)
        chunk = items[start:start + limit] if limit else items[start:]
        if limit and start + limit < len(items):
            state = {"rv": meta["resourceVersion"], "start": start + limit}
            meta["continue"] = base64.urlsafe_b64encode(json.dumps(state).encode()).decode()
            meta["remainingItemCount"] = len(items) - start - limit
        return Reply(200, {"kind": kind, "apiVersion": "v1", "metadata": meta, "items": chunk})

    def _log(self, ns: str, name: str, request: Request) -> Reply:
        """``GET .../pods/NAME/log`` with ``container``, ``tailLines``, ``sinceSeconds``, ``timestamps``."""
        pod = next((p for p in self.pods if p["metadata"]["namespace"] == ns
                    and p["metadata"]["name"] == name and f"{ns}/{name}" not in self.deleted), None)
        if pod is None:
            return not_found("pods", name)
        if f"{ns}/{name}" in self.forbidden_logs:
            return forbidden("pods/log", name, ns, "system:serviceaccount:seismo:seismo-poller")
        names = [c["name"] for c in pod["spec"]["containers"]]
        container = request.param("container") or (names[0] if len(names) == 1 else "")
        if not container:
            return bad_request(f"a container name must be specified for pod {name}, "
                               f"choose one of: [{' '.join(names)}]")
        if container not in names:
            return bad_request(f"container {container} is not valid for pod {name}")
        for state in pod.get("status", {}).get("containerStatuses", []):
            waiting = (state.get("state") or {}).get("waiting") or {}
            if state["name"] == container and waiting.get("reason") in _NOT_STARTED:
                return bad_request(f'container "{container}" in pod "{name}" is waiting to start: '
                                   f'{waiting["reason"]}')
        lines = self.logs.get((ns, name, container), [])
        if request.param("sinceSeconds"):
            oldest = self.now().timestamp() - int(request.param("sinceSeconds") or 0)
            lines = [line for line in lines if _stamp(line) >= oldest]
        tail = int(request.param("tailLines") or 10**9)
        body = "".join(f"{line}\n" for line in lines[-tail:]).encode()
        return Reply(200, body, {"Content-Type": "text/plain"})

    def _watch(self, parts: list[str], rv: int, request: Request) -> Reply:
        """A watch that blocks like the API server's: it streams the events after ``rv`` (and those
        added while it is open) until ``timeoutSeconds``; with ``allowWatchBookmarks`` it sends a
        BOOKMARK with the current resourceVersion just before it ends (the API server does so at the
        end of a watch with a timeout: KEP-956 "Watch bookmark"); too old an ``rv`` gets an ERROR
        event carrying a 410 Expired Status."""
        if rv < self.oldest_rv:
            gone = {"type": "ERROR", "object": expired(f"too old resource version: {rv} ({self.oldest_rv})")}
            return Reply(200, (json.dumps(gone) + "\n").encode())
        timeout = float(request.param("timeoutSeconds") or 1800)
        bookmarks = self.watch_bookmarks and (request.param("allowWatchBookmarks") or "").lower() == "true"

        def stream(write: Write) -> None:
            deadline = time.monotonic() + timeout
            sent = rv
            for line in self.watch_lines:
                write(f"{line}\n".encode())
            while True:
                newer = sorted((i for i in self._ns(self.events, parts)
                                if int(i["metadata"]["resourceVersion"]) > sent),
                               key=lambda i: int(i["metadata"]["resourceVersion"]))
                for item in newer:
                    write((json.dumps({"type": "ADDED", "object": item}) + "\n").encode())
                    sent = int(item["metadata"]["resourceVersion"])
                if time.monotonic() >= deadline:
                    break
                time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))  # the server's own wait
            if bookmarks:
                mark = {"kind": "Event", "apiVersion": "v1", "metadata": {"resourceVersion": self._rv()}}
                write((json.dumps({"type": "BOOKMARK", "object": mark}) + "\n").encode())

        return Reply(200, stream=stream)


def _stamp(line: str) -> float:
    """The epoch seconds of a ``timestamps=true`` log line (RFC 3339, up to nanoseconds)."""
    head = line.split(" ", 1)[0].rstrip("Z")
    whole, _, frac = head.partition(".")
    return datetime.fromisoformat(whole).replace(tzinfo=UTC).timestamp() + float(f"0.{frac or 0}")


def make_replicaset(deployment: dict[str, Any], revision: int, image: str, created: str) -> dict[str, Any]:
    """A ReplicaSet owned by ``deployment`` at ``revision``, as ``GET …/replicasets`` lists it."""
    meta = deployment["metadata"]
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{meta['name']}-{revision:x}f9c",
            "namespace": meta["namespace"],
            "labels": dict(meta["labels"]),
            "creationTimestamp": created,
            "annotations": {"deployment.kubernetes.io/revision": str(revision)},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": meta["name"],
                                 "uid": meta["uid"], "controller": True}],
        },
        "spec": {"replicas": 3,
                 "template": {"spec": {"containers": [{"name": meta["name"], "image": image}]}}},
        "status": {"replicas": 3, "readyReplicas": 3},
    }


def kubeconfig(path: Path, servers: dict[str, str], current: str) -> Path:
    """Write a kubeconfig with one context (and cluster, user) per ``name → server URL``."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": current,
        "clusters": [{"name": n, "cluster": {"server": url}} for n, url in servers.items()],
        "users": [{"name": n, "user": {"token": f"token-{n}"}} for n in servers],
        "contexts": [{"name": n, "context": {"cluster": n, "user": n}} for n in servers],
    }
    path.write_text(yaml.safe_dump(doc))
    return path
