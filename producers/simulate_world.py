"""The simulated estate behind ``seismo simulate``: services, who calls whom, nodes, databases.

Pure and deterministic: :func:`build_world` draws everything from the ``random.Random``
it is given, and :func:`draft` builds ingest-contract dicts (no id: the id is derived
from the content by :func:`producers.ingest.parse_event`).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

NAMES = (
    "frontend", "api-gateway", "checkout", "cart", "payments", "orders", "inventory", "catalog",
    "search", "users", "auth", "shipping", "notifications", "recommendations", "billing", "reviews",
    "pricing", "fraud", "ledger", "media",
)
NAMESPACE = "prod"
REGION = "eu-west-1"
CLUSTER = "prod-eu-1"


@dataclass(frozen=True)
class World:
    """Services (callers before callees), their call graph, the node each runs on, their databases."""

    services: tuple[str, ...]
    callees: Mapping[str, tuple[str, ...]]
    nodes: Mapping[str, str]
    databases: Mapping[str, str]

    def callers(self, service: str) -> tuple[str, ...]:
        """Services that call ``service`` directly, in service order."""
        return tuple(s for s in self.services if service in self.callees[s])

    def neighbours(self, service: str) -> tuple[str, ...]:
        """Other services scheduled on the same node."""
        return tuple(s for s in self.services if s != service and self.nodes[s] == self.nodes[service])


def service_names(count: int) -> tuple[str, ...]:
    """``count`` distinct, realistic names; past the pool, names get a numeric suffix."""
    return tuple(
        NAMES[i % len(NAMES)] + ("" if i < len(NAMES) else f"-{i // len(NAMES) + 1}") for i in range(count)
    )


def build_world(count: int, rng: random.Random) -> World:
    """A layered call graph: every service but the first is called by one or two of the four before it."""
    if count < 1:
        raise ValueError("a simulation needs at least one service")
    services = service_names(count)
    callees: dict[str, list[str]] = {s: [] for s in services}
    for i, svc in enumerate(services[1:], start=1):
        nearby = services[max(0, i - 4):i]  # callers from the tiers just above: a deep graph, not a star
        for caller in rng.sample(nearby, k=min(len(nearby), rng.choice((1, 1, 2)))):
            callees[caller].append(svc)
    shuffled = rng.sample(services, k=count)  # three services per node
    nodes = {s: f"ip-10-0-{i // 3 + 1}-{17 + i // 3 * 11}.{REGION}.compute.internal"
             for i, s in enumerate(shuffled)}
    databases = {s: f"{s}-db" for s in services if not callees[s] or rng.random() < 0.3}
    return World(services, {s: tuple(c) for s, c in callees.items()}, nodes, databases)


def iso(ts: datetime) -> str:
    """RFC 3339 with milliseconds and a ``Z``: the form every simulated timestamp takes."""
    return ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def stable_suffix(*parts: str, length: int = 5) -> str:
    """A pod-hash-like suffix that depends only on ``parts`` (never on Python's hash seed)."""
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    digest = hashlib.sha256("/".join(parts).encode()).digest()
    return "".join(alphabet[b % len(alphabet)] for b in digest[:length])


def pod(service: str, generation: str = "1") -> str:
    """The name of ``service``'s pod in a given rollout generation."""
    return f"{service}-{stable_suffix(service, generation, length=9)}-{stable_suffix(service, generation)}"


def draft(
    ts: datetime,
    *,
    source: str,
    kind: str,
    service: str,
    severity: str,
    message: str,
    entity: Mapping[str, str] | None = None,
    metric: Mapping[str, Any] | None = None,
    attributes: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One event as the JSONL ingest contract spells it, without ``id``."""
    out: dict[str, Any] = {
        "timestamp": iso(ts), "source": source, "kind": kind, "service": service,
        "severity": severity, "message": message, "entity": dict(entity or {}),
        "attributes": dict(attributes or {}),
    }
    if metric is not None:
        out["metric"] = dict(metric)
    return out


def k8s_entity(world: World, service: str, generation: str = "1") -> dict[str, str]:
    return {"namespace": NAMESPACE, "pod": pod(service, generation), "container": service,
            "node": world.nodes[service], "cluster": CLUSTER}


def jitter(rng: random.Random, low_s: float, high_s: float) -> timedelta:
    """A lag drawn uniformly from ``[low_s, high_s]`` seconds, to the millisecond."""
    return timedelta(milliseconds=rng.randint(int(low_s * 1000), int(high_s * 1000)))
