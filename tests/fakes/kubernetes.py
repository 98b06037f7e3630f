"""A fake Kubernetes API server for the official client: pods, events (list + watch), logs,
metrics.k8s.io and deployments, with ``labelSelector`` (equality terms) and ``410 Gone`` on
watches from a resourceVersion older than ``oldest_rv``.  :func:`kubeconfig` writes a kubeconfig
whose contexts point at fake servers over plain HTTP.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.fakes import FakeHttpServer, Reply, Request


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


class FakeKubernetes(FakeHttpServer):
    def __init__(self) -> None:
        super().__init__()
        self.pods: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.deployments: list[dict[str, Any]] = []
        self.logs: dict[tuple[str, str, str], list[str]] = {}
        self.pod_metrics: list[dict[str, Any]] | None = None  # None: metrics.k8s.io not served
        self.oldest_rv = 0
        self.watch_lines: list[str] = []  # extra raw lines appended to every watch response

    def handle(self, request: Request) -> Reply:
        p = request.path.strip("/").split("/")
        if p[:2] == ["api", "v1"] and p[-1] == "pods" and len(p) in (3, 5):
            return self._list(self._select(self._ns(self.pods, p), request), "PodList")
        if p[:2] == ["api", "v1"] and p[-1] == "events":
            items = self._ns(self.events, p)
            if (request.param("watch") or "").lower() in ("true", "1"):
                return self._watch(items, int(request.param("resourceVersion") or 0))
            return self._list(items, "EventList")
        if p[:2] == ["api", "v1"] and p[-1] == "log":
            lines = self.logs.get((p[3], p[5], request.param("container") or ""), [])
            tail = int(request.param("tailLines") or 10**9)
            return Reply(
                200, "".join(f"{line}\n" for line in lines[-tail:]).encode(), {"Content-Type": "text/plain"}
            )
        if p[:3] == ["apis", "metrics.k8s.io", "v1beta1"]:
            if self.pod_metrics is None:
                return Reply(404, {"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404})
            return self._list(self._ns(self.pod_metrics, p), "PodMetricsList")
        if p[:3] == ["apis", "apps", "v1"] and p[-1] == "deployments":
            return self._list(self._select(self._ns(self.deployments, p), request), "DeploymentList")
        return Reply(404, {"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404})

    @staticmethod
    def _ns(items: list[dict[str, Any]], parts: list[str]) -> list[dict[str, Any]]:
        if "namespaces" in parts:
            ns = parts[parts.index("namespaces") + 1]
            return [i for i in items if i["metadata"].get("namespace") == ns]
        return items

    @staticmethod
    def _select(items: list[dict[str, Any]], request: Request) -> list[dict[str, Any]]:
        terms = [t.split("=", 1) for t in (request.param("labelSelector") or "").split(",") if "=" in t]
        return [i for i in items if all(i["metadata"].get("labels", {}).get(k) == v for k, v in terms)]

    def _rv(self) -> str:
        return str(max([int(e["metadata"]["resourceVersion"]) for e in self.events] or [1]))

    def _list(self, items: list[dict[str, Any]], kind: str) -> Reply:
        return Reply(
            200,
            {"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": self._rv()}, "items": items},
        )

    def _watch(self, items: list[dict[str, Any]], rv: int) -> Reply:
        if rv < self.oldest_rv:
            gone = {
                "type": "ERROR",
                "object": {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Failure",
                    "message": f"too old resource version: {rv} ({self.oldest_rv})",
                    "reason": "Expired",
                    "code": 410,
                },
            }
            return Reply(200, (json.dumps(gone) + "\n").encode())
        newer = [i for i in items if int(i["metadata"]["resourceVersion"]) > rv]
        lines = [json.dumps({"type": "ADDED", "object": i}) for i in newer] + self.watch_lines
        return Reply(200, "".join(f"{line}\n" for line in lines).encode())


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
