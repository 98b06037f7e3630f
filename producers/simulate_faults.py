"""The faults ``seismo simulate`` injects, each as the signals real sources would emit.

Every generator is pure: ``(world, rng, fault) -> Injection``, the explicit events of
the fault plus the :class:`MetricEffect` bends it puts on background metrics.  Lags
between the signals follow how the sources behave (Sentry within a minute, alarms
after their evaluation periods, Grafana after its ``for:`` clause).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from producers.scenarios.traces import error_trace
from producers.simulate_background import MetricEffect
from producers.simulate_world import REGION, World, draft, jitter, k8s_entity, pod

MIN = 60.0


class FaultKind(StrEnum):
    BAD_DEPLOY = "bad_deploy"
    DB_CONNECTION_EXHAUSTION = "db_connection_exhaustion"
    NOISY_NEIGHBOUR_CPU = "noisy_neighbour_cpu"
    CERTIFICATE_EXPIRY = "certificate_expiry"
    MEMORY_LEAK = "memory_leak"


@dataclass(frozen=True)
class Fault:
    incident_id: str
    kind: FaultKind
    root: str
    onset: datetime


@dataclass(frozen=True)
class Injection:
    drafts: list[dict[str, Any]]
    effects: list[MetricEffect]
    affected: tuple[str, ...]


def _at(f: Fault, rng: random.Random, low_s: float, high_s: float) -> datetime:
    return f.onset + jitter(rng, low_s, high_s)


def traced(world: World, rng: random.Random, d: dict[str, Any], root: str, caller: str | None
           ) -> list[dict[str, Any]]:
    """``d`` with the trace id of one failing request, plus that request's errored spans."""
    ts = datetime.fromisoformat(d["timestamp"].replace("Z", "+00:00"))
    trace_id, spans = error_trace(world, rng, ts, root, caller, d["message"])
    d["attributes"] = {**d["attributes"], "trace_id": trace_id}
    return [d, *spans]


def _effect(f: Fault, service: str, metric: str, span: tuple[float, float], factors: tuple[float, float]
            ) -> MetricEffect:
    return MetricEffect(f.incident_id, service, metric, f.onset + timedelta(seconds=span[0]),
                        f.onset + timedelta(seconds=span[1]), factors[0], factors[1])


def bad_deploy(world: World, rng: random.Random, f: Fault) -> Injection:
    """Release → Sentry error spike → CrashLoopBackOff → latency alarm → Grafana alert → rollback."""
    svc, version = f.root, f"2.{rng.randint(3, 40)}.{rng.randint(0, 9)}"
    release = {"release": f"{svc}@{version}"}
    new = k8s_entity(world, svc, version)
    out = [draft(f.onset, source="grafana", kind="deploy", service=svc, severity="info", entity=release,
                 message=f"Deployed {svc} {version} (commit {pod(svc, version)[-5:]}) by ci-bot")]
    out.append(draft(_at(f, rng, 5, 20), source="kubernetes", kind="event", service=svc, severity="info",
                     entity=new, message=f"Scaled up replica set {new['pod'].rsplit('-', 1)[0]} to 3"))
    t = _at(f, rng, 40, 90)
    field = rng.choice(("currency", "customer_id", "locale"))
    for i in range(rng.randint(8, 16)):
        error = draft(t, source="sentry", kind="error", service=svc, severity="error",
                      entity={"project": svc, **release}, attributes={"level": "error"},
                      message=f"KeyError: '{field}' in {svc}/api/handlers.py:88 in handle()")
        out.extend(traced(world, rng, error, svc, None) if i % 3 == 0 else [error])
        t += jitter(rng, 4, 20)
    for restarts in range(2, 2 + rng.randint(2, 3)):
        out.append(draft(_at(f, rng, 120, 200), source="kubernetes", kind="event", service=svc,
                         severity="warning" if restarts < 3 else "error", entity=new,
                         message=f"Back-off restarting failed container {svc} in pod {new['pod']} "
                                 f"(CrashLoopBackOff, restarts={restarts})"))
    out.append(draft(_at(f, rng, 180, 240), source="cloudwatch", kind="alert", service=svc,
                     severity="critical", entity={"region": REGION}, attributes={"state": "ALARM"},
                     message=f"ALARM: {svc}-p95-latency > 800 ms for 3 datapoints within 3 minutes"))
    out.append(draft(_at(f, rng, 240, 300), source="grafana", kind="alert", service=svc, severity="error",
                     attributes={"state": "firing"},
                     message=f"[FIRING:1] {svc} HighErrorRate: 5xx ratio {rng.uniform(8, 30):.1f}% > 2%"))
    for caller in world.callers(svc)[:2]:
        upstream = draft(_at(f, rng, 100, 220), source="kubernetes", kind="log", service=caller,
                         severity="error", entity=k8s_entity(world, caller),
                         message=f"upstream {svc} returned 503 for POST /api/{svc}/orders")
        out.extend(traced(world, rng, upstream, svc, caller))
    rollback = rng.uniform(12, 18) * MIN
    out.append(draft(_at(f, rng, rollback, rollback), source="grafana", kind="deploy", service=svc,
                     severity="info", entity=release, message=f"Rolled back {svc} from {version} by on-call"))
    effects = [_effect(f, svc, "latency_p95_ms", (60, rollback), (4.0, 3.0))]
    return Injection(out, effects, (svc, *world.callers(svc)[:2]))


def db_exhaustion(world: World, rng: random.Random, f: Fault) -> Injection:
    """Pool exhaustion at the root, its DB alarm, then timeouts and open breakers in its callers."""
    svc, db = f.root, world.databases.get(f.root, f"{f.root}-db")
    out, t = [], f.onset
    if rng.random() < 0.5:  # a config change shortly before: "what changed"
        out.append(draft(_at(f, rng, -300, -90), source="kubernetes", kind="event", service=svc,
                         severity="info", entity=k8s_entity(world, svc),
                         message=f"ConfigMap prod/{svc}-config updated: pool.max_size 40 -> 20 "
                                 "(config change)"))
    for i in range(rng.randint(6, 12)):
        out.append(draft(t, source="kubernetes", kind="log", service=svc, severity="error",
                         entity=k8s_entity(world, svc),
                         message="psycopg.OperationalError: connection pool exhausted "
                                 f"(max=20, waiting={24 + i})"))
        t += jitter(rng, 10, 30)
    out.append(draft(_at(f, rng, 60, 120), source="cloudwatch", kind="alert", service=svc,
                     severity="critical", entity={"region": REGION},
                     attributes={"state": "ALARM", "dimension.DBInstance": db},
                     message=f"ALARM: {db} DatabaseConnections >= 95 for 2 datapoints within 2 minutes"))
    effects = [_effect(f, svc, "db_connections", (-120, 12 * MIN), (3.0, 5.0)),
               _effect(f, svc, "latency_p95_ms", (0, 12 * MIN), (3.0, 2.0))]
    for caller in world.callers(svc):
        for _ in range(rng.randint(3, 6)):
            out.extend(traced(world, rng, draft(
                _at(f, rng, 90, 300), source="sentry", kind="error", service=caller, severity="error",
                entity={"project": caller}, attributes={"level": "error"},
                message=f"TimeoutError: upstream {svc} did not respond within 5000ms"), svc, caller))
        out.append(draft(_at(f, rng, 150, 320), source="kubernetes", kind="log", service=caller,
                         severity="warning", entity=k8s_entity(world, caller),
                         message=f"circuit breaker OPEN for {svc} after 20 consecutive failures"))
        effects.append(_effect(f, caller, "latency_p95_ms", (90, 12 * MIN), (2.5, 1.5)))
    out.append(draft(_at(f, rng, 11 * MIN, 14 * MIN), source="kubernetes", kind="log", service=svc,
                     severity="info", entity=k8s_entity(world, svc),
                     message="connection pool recovered: active=12 idle=8 max=20"))
    return Injection(out, effects, (svc, *world.callers(svc)))


def noisy_neighbour(world: World, rng: random.Random, f: Fault) -> Injection:
    """The root saturates its node's CPU; a neighbour is throttled and breaches its latency alarm."""
    svc = f.root
    victim = (world.neighbours(svc) or (svc,))[0]
    node = world.nodes[svc]
    out = [draft(f.onset, source="kubernetes", kind="event", service=victim, severity="warning",
                 entity=k8s_entity(world, victim),
                 message=f"CPU throttling {rng.randint(60, 90)}% for container {victim} on node {node}")]
    out.append(draft(_at(f, rng, 60, 120), source="grafana", kind="alert", service=svc, severity="error",
                     attributes={"state": "firing", "node": node},
                     message=f"[FIRING:1] KubeNodeCPUSaturation {node}: top consumer {svc} "
                             f"({rng.uniform(3.2, 3.9):.1f} of 4 cores)"))
    out.append(draft(_at(f, rng, 150, 240), source="cloudwatch", kind="alert", service=victim,
                     severity="critical", entity={"region": REGION}, attributes={"state": "ALARM"},
                     message=f"ALARM: {victim}-p95-latency > 500 ms for 3 datapoints within 3 minutes"))
    out.append(draft(_at(f, rng, 9 * MIN, 12 * MIN), source="kubernetes", kind="event", service=svc,
                     severity="info", entity=k8s_entity(world, svc, "moved"),
                     message=f"Successfully assigned prod/{pod(svc, 'moved')} to another node"))
    effects = [_effect(f, svc, "cpu_utilization", (-60, 10 * MIN), (3.0, 3.5)),
               _effect(f, victim, "latency_p95_ms", (0, 10 * MIN), (3.0, 3.0)),
               _effect(f, victim, "cpu_utilization", (0, 10 * MIN), (1.6, 1.6))]
    return Injection(out, effects, tuple(dict.fromkeys((svc, victim))))


def cert_expiry(world: World, rng: random.Random, f: Fault) -> Injection:
    """Failed renewal, then expiry: TLS errors in every caller and a failing blackbox probe."""
    svc = f.root
    out = [draft(f.onset, source="kubernetes", kind="event", service=svc, severity="warning",
                 entity=k8s_entity(world, svc),
                 message=f"cert-manager: Certificate prod/{svc}-tls renewal failed: "
                         "ACME challenge timed out")]
    expiry = rng.uniform(4, 8) * MIN
    for caller in world.callers(svc) or (svc,):
        for _ in range(rng.randint(4, 8)):
            error = draft(_at(f, rng, expiry, expiry + 4 * MIN), source="sentry", kind="error",
                          service=caller, severity="error", entity={"project": caller},
                          message=f"SSLError: certificate verify failed: certificate has expired "
                                  f"calling https://{svc}.prod.svc:8443", attributes={"level": "error"})
            out.extend(traced(world, rng, error, svc, caller) if caller != svc else [error])
    out.append(draft(_at(f, rng, expiry + 60, expiry + 120), source="grafana", kind="alert", service=svc,
                     severity="error", attributes={"state": "firing"},
                     message=f"[FIRING:1] BlackboxProbeFailed https://{svc}.prod.svc:8443: "
                             "certificate expired"))
    out.append(draft(_at(f, rng, expiry + 10 * MIN, expiry + 14 * MIN), source="kubernetes", kind="event",
                     service=svc, severity="info", entity=k8s_entity(world, svc),
                     message=f"cert-manager: Certificate prod/{svc}-tls is up to date and has not expired"))
    effects = [_effect(f, svc, "request_rate", (expiry, expiry + 10 * MIN), (0.2, 0.3))]
    return Injection(out, effects, (svc, *world.callers(svc)))


def memory_leak(world: World, rng: random.Random, f: Fault) -> Injection:
    """Working set climbs for ~20 minutes, a near-limit alert, OOMKilled, restart, resets in callers."""
    svc, ramp = f.root, rng.uniform(15, 25) * MIN
    effects = [_effect(f, svc, "memory_working_set_mb", (0, ramp), (1.1, 3.5))]
    out = [draft(f.onset + timedelta(seconds=ramp * 0.7), source="grafana", kind="alert", service=svc,
                 severity="warning", attributes={"state": "firing"},
                 message=f"[FIRING:1] ContainerMemoryNearLimit {svc}: working set at 87% of limit")]
    out.append(draft(f.onset + timedelta(seconds=ramp), source="kubernetes", kind="event", service=svc,
                     severity="error", entity=k8s_entity(world, svc),
                     message=f"Container {svc} in pod {pod(svc)} was OOMKilled (exit code 137, limit 1Gi)"))
    out.append(draft(_at(f, rng, ramp + 10, ramp + 40), source="kubernetes", kind="event", service=svc,
                     severity="info", entity=k8s_entity(world, svc), message=f"Started container {svc}"))
    for caller in world.callers(svc)[:2]:
        out.extend(traced(world, rng, draft(
            _at(f, rng, ramp, ramp + 20), source="sentry", kind="error", service=caller, severity="error",
            entity={"project": caller}, attributes={"level": "error"},
            message=f"ConnectionResetError: connection reset by peer calling {svc}"), svc, caller))
    return Injection(out, effects, (svc, *world.callers(svc)[:2]))


GENERATORS: dict[FaultKind, Callable[[World, random.Random, Fault], Injection]] = {
    FaultKind.BAD_DEPLOY: bad_deploy,
    FaultKind.DB_CONNECTION_EXHAUSTION: db_exhaustion,
    FaultKind.NOISY_NEIGHBOUR_CPU: noisy_neighbour,
    FaultKind.CERTIFICATE_EXPIRY: cert_expiry,
    FaultKind.MEMORY_LEAK: memory_leak,
}


def choose_root(kind: FaultKind, world: World, rng: random.Random, busy: Sequence[str]) -> str:
    """A plausible root for ``kind`` (a service with a database for exhaustion, with a neighbour
    for noisy CPU, with callers where that spreads the fault), avoiding ``busy`` when possible."""
    def fits(s: str) -> bool:
        if kind is FaultKind.DB_CONNECTION_EXHAUSTION:
            return s in world.databases and bool(world.callers(s))
        if kind is FaultKind.NOISY_NEIGHBOUR_CPU:
            return bool(world.neighbours(s))
        if kind is FaultKind.CERTIFICATE_EXPIRY:
            return bool(world.callers(s))
        return True

    for pool in ([s for s in world.services if fits(s) and s not in busy],
                 [s for s in world.services if s not in busy], list(world.services)):
        if pool:
            return rng.choice(pool)
    raise ValueError("world has no services")
