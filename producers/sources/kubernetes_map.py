"""Kubernetes objects (the API's JSON) → Events.  Pure; no I/O.

* :func:`pod_problems` — containers waiting in CrashLoopBackOff / ImagePullBackOff …,
  terminated OOMKilled / Error (now or as their last state), and failed pods.
* :func:`event_event` — a ``core/v1`` Event.
* :func:`rollout_event` — a Deployment at a new ``deployment.kubernetes.io/revision``.
* :func:`pod_metric_events` — a ``metrics.k8s.io/v1beta1`` PodMetrics.
* :func:`log_event` / :func:`split_log_line` — one ``timestamps=true`` log line.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from producers.mapping import ServiceMapper
from producers.sources.grafana_frames import log_severity
from schemas.models import Entity, Event, EventKind, Metric, Severity, Source

BAD_WAITING = {
    "CrashLoopBackOff": Severity.ERROR,
    "ImagePullBackOff": Severity.WARNING,
    "ErrImagePull": Severity.WARNING,
    "CreateContainerConfigError": Severity.ERROR,
    "CreateContainerError": Severity.ERROR,
    "InvalidImageName": Severity.ERROR,
    "RunContainerError": Severity.ERROR,
}
BAD_TERMINATED = {"OOMKilled", "Error", "ContainerCannotRun", "DeadlineExceeded"}
_SUFFIX = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
}
_QUANTITY = re.compile(r"^([0-9.]+)(n|u|m|k|M|G|T|Ki|Mi|Gi|Ti)?$")


def quantity(value: str) -> float:
    """A Kubernetes resource quantity (``250m``, ``123456n``, ``64Mi``) as a float; ValueError if not one."""
    match = _QUANTITY.match(value.strip())
    if not match:
        raise ValueError(f"not a resource quantity: {value!r}")
    return float(Decimal(match[1]) * _SUFFIX[match[2] or ""])


def parse_k8s_time(value: str) -> datetime:
    """RFC 3339 with up to nanoseconds (fraction cut to microseconds), as aware UTC."""
    head, _, frac = value.rstrip("Z").partition(".")
    text = f"{head}.{frac[:6].ljust(6, '0')}" if frac else head
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass(frozen=True)
class Problem:
    container: str
    reason: str
    restarts: int
    severity: Severity
    detail: str

    @property
    def fingerprint(self) -> str:
        return f"{self.reason}:{self.restarts}"


def pod_problems(pod: dict[str, Any]) -> list[Problem]:
    """Every container of ``pod`` in a bad state, and the pod itself when its phase is Failed."""
    status = pod.get("status") or {}
    out = []
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        state, last = cs.get("state") or {}, (cs.get("lastState") or {}).get("terminated") or {}
        waiting, terminated = state.get("waiting") or {}, state.get("terminated") or {}
        restarts = int(cs.get("restartCount") or 0)
        detail = (
            f"last terminated {last['reason']} (exit {last.get('exitCode')})" if last.get("reason") else ""
        )
        if waiting.get("reason") in BAD_WAITING:
            reason, severity = waiting["reason"], BAD_WAITING[waiting["reason"]]
            detail = "; ".join(filter(None, [waiting.get("message", "")[:300], detail]))
        elif terminated.get("reason") in BAD_TERMINATED:
            reason, severity = terminated["reason"], Severity.ERROR
            detail = f"exit {terminated.get('exitCode')}"
        elif last.get("reason") in BAD_TERMINATED and restarts > 0:
            reason, severity = last["reason"], Severity.ERROR
        else:
            continue
        out.append(Problem(str(cs["name"]), reason, restarts, severity, detail))
    if status.get("phase") == "Failed":
        out.append(
            Problem("", status.get("reason") or "Failed", 0, Severity.ERROR, status.get("message") or "")
        )
    return out


def problem_event(cluster: str, pod: dict[str, Any], problem: Problem, service: str, now: datetime) -> Event:
    meta = pod["metadata"]
    name, ns = meta["name"], meta.get("namespace", "default")
    who = f"container {problem.container}" if problem.container else "pod"
    message = f"Pod {name} {who}: {problem.reason} (restarts {problem.restarts})"
    return Event(
        id=f"k8s:{cluster}:pod:{ns}/{name}/{problem.container}:{problem.fingerprint}",
        source=Source.KUBERNETES,
        kind=EventKind.EVENT,
        timestamp=now,
        service=service,
        entity=Entity(
            namespace=ns,
            pod=name,
            container=problem.container or None,
            node=(pod.get("spec") or {}).get("nodeName"),
            cluster=cluster,
        ),
        severity=problem.severity,
        message=message + (f"; {problem.detail}" if problem.detail else ""),
        attributes={
            "reason": problem.reason,
            "restarts": str(problem.restarts),
            "phase": str((pod.get("status") or {}).get("phase") or ""),
        },
    )


def event_event(cluster: str, item: dict[str, Any], service: str) -> Event:
    """A ``core/v1`` Event; Warning → warning severity (pure; raises KeyError/ValueError)."""
    meta, obj = item["metadata"], item.get("involvedObject") or {}
    when = (
        item.get("lastTimestamp")
        or item.get("eventTime")
        or item.get("firstTimestamp")
        or meta["creationTimestamp"]
    )
    kind = str(obj.get("kind") or "")
    return Event(
        id=f"k8s:{cluster}:event:{meta['uid']}:{item.get('count') or 1}",
        source=Source.KUBERNETES,
        kind=EventKind.EVENT,
        timestamp=parse_k8s_time(when),
        service=service,
        entity=Entity(
            namespace=obj.get("namespace") or meta.get("namespace"),
            pod=obj.get("name") if kind == "Pod" else None,
            cluster=cluster,
            node=(item.get("source") or {}).get("host"),
        ),
        severity=Severity.WARNING if item.get("type") == "Warning" else Severity.INFO,
        message=f"{kind} {obj.get('name', '')}: {item.get('reason', '')}: {item.get('message', '')}"[:2000],
        attributes={
            "reason": str(item.get("reason") or ""),
            "count": str(item.get("count") or 1),
            "involved_kind": kind,
            "involved_name": str(obj.get("name") or ""),
        },
    )


def rollout_event(cluster: str, dep: dict[str, Any], revision: str, service: str, now: datetime) -> Event:
    """A Deployment at a new revision as a ``deploy`` Event; a stalled rollout is an error."""
    meta, spec, status = dep["metadata"], dep.get("spec") or {}, dep.get("status") or {}
    images = [
        c.get("image", "") for c in ((spec.get("template") or {}).get("spec") or {}).get("containers", [])
    ]
    progress: dict[str, Any] = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Progressing"), {}
    )
    stalled = progress.get("reason") == "ProgressDeadlineExceeded"
    ns = meta.get("namespace", "default")
    return Event(
        id=f"k8s:{cluster}:deploy:{ns}/{meta['name']}:{revision}",
        source=Source.KUBERNETES,
        kind=EventKind.DEPLOY,
        timestamp=now,
        service=service,
        entity=Entity(namespace=ns, cluster=cluster, release=images[0] if images else None),
        severity=Severity.ERROR if stalled else Severity.INFO,
        message=f"Rollout of deployment {meta['name']} to revision {revision}: {', '.join(images)}"
        + (f" ({progress.get('reason')})" if progress.get("reason") else ""),
        attributes={
            "revision": revision,
            "images": ",".join(images),
            "replicas": str(spec.get("replicas", "")),
            "ready": str(status.get("readyReplicas", 0)),
            "progress": str(progress.get("reason") or ""),
        },
    )


def pod_metric_events(cluster: str, item: dict[str, Any], service: str) -> list[Event]:
    """CPU (cores) and memory (bytes) per container of one PodMetrics."""
    meta = item["metadata"]
    when = parse_k8s_time(item["timestamp"])
    out = []
    for c in item.get("containers") or []:
        for name, unit, raw in (
            ("cpu_cores", "cores", c["usage"]["cpu"]),
            ("memory_bytes", "bytes", c["usage"]["memory"]),
        ):
            out.append(
                Event(
                    id=f"k8s:{cluster}:metrics:{meta['namespace']}/{meta['name']}/{c['name']}:{name}:{item['timestamp']}",
                    source=Source.KUBERNETES,
                    kind=EventKind.METRIC,
                    timestamp=when,
                    service=service,
                    entity=Entity(
                        namespace=meta["namespace"], pod=meta["name"], container=c["name"], cluster=cluster
                    ),
                    severity=Severity.INFO,
                    message=f"{name} of {meta['name']}/{c['name']}",
                    metric=Metric(name=name, value=quantity(raw), unit=unit),
                    attributes={"window": str(item.get("window") or "")},
                )
            )
    return out


def split_log_line(line: str) -> tuple[str, str]:
    """``"2024-05-01T11:59:01.123456789Z text"`` → (timestamp, text); ValueError without a timestamp."""
    stamp, sep, text = line.partition(" ")
    if not sep and not stamp.endswith("Z"):
        raise ValueError("log line has no timestamp")
    parse_k8s_time(stamp)
    return stamp, text


def stamp_ns(stamp: str) -> int:
    """A log timestamp as integer nanoseconds, for exact ordering (RFC3339Nano drops trailing zeros)."""
    head, _, frac = stamp.rstrip("Z").partition(".")
    seconds = int(datetime.fromisoformat(head).replace(tzinfo=UTC).timestamp())
    return seconds * 1_000_000_000 + int(frac.ljust(9, "0")[:9] or 0)


def log_event(cluster: str, ns: str, pod: str, container: str, stamp: str, text: str, service: str) -> Event:
    digest = hashlib.sha256(f"{stamp}\n{text}".encode()).hexdigest()[:20]
    return Event(
        id=f"k8s:{cluster}:log:{ns}/{pod}/{container}:{stamp_ns(stamp)}:{digest}",
        source=Source.KUBERNETES,
        kind=EventKind.LOG,
        timestamp=parse_k8s_time(stamp),
        service=service,
        entity=Entity(namespace=ns, pod=pod, container=container, cluster=cluster),
        severity=log_severity(text, {}),
        message=text[:4000],
    )


def pod_service(mapper: ServiceMapper, pod: dict[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    return mapper.for_k8s(meta.get("labels"), meta.get("name"))
