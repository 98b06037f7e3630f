"""Background traffic for ``seismo simulate``: what a healthy estate emits all day.

Per service and minute: a few info logs from varied templates, the occasional
harmless warning, very rarely an unrelated one-off error, and one point of each
metric with a daily load curve and noise.  A :class:`MetricEffect` lets an injected
fault bend one metric of one service over a time range; the points it touches are
returned tagged with the fault's incident id so that they land in the ground truth.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from producers.scenarios.traces import background_traces
from producers.simulate_world import REGION, World, draft, k8s_entity

RESOURCES = ("items", "orders", "carts", "sessions", "profiles", "invoices", "quotes", "events")
ERRORS_PER_SERVICE_HOUR = 0.15
DEPLOYS_PER_SERVICE_HOUR = 0.33
WARNING_SHARE = 0.03


@dataclass(frozen=True)
class MetricEffect:
    """Multiply ``metric`` of ``service`` by a factor going linearly from ``factor_from`` to ``factor_to``."""

    incident_id: str
    service: str
    metric: str
    start: datetime
    end: datetime
    factor_from: float
    factor_to: float

    def factor(self, ts: datetime) -> float | None:
        """The factor at ``ts``, or None outside ``[start, end)``."""
        if not self.start <= ts < self.end:
            return None
        share = (ts - self.start) / (self.end - self.start)
        return self.factor_from + (self.factor_to - self.factor_from) * share


@dataclass(frozen=True)
class MetricSpec:
    name: str
    source: str
    unit: str
    low: float
    high: float
    ceiling: float | None = None
    follows_load: bool = True


METRICS = (
    MetricSpec("latency_p95_ms", "cloudwatch", "ms", 60, 250),
    MetricSpec("request_rate", "cloudwatch", "req/s", 20, 400),
    MetricSpec("cpu_utilization", "grafana", "percent", 12, 40, ceiling=100.0),
    MetricSpec("memory_working_set_mb", "grafana", "MB", 250, 900, follows_load=False),
)
DB_METRIC = MetricSpec("db_connections", "cloudwatch", "count", 8, 25, ceiling=100.0)

Template = Callable[[random.Random, str, str], str]
INFO_TEMPLATES: tuple[Template, ...] = (
    lambda r, s, c: f"GET /api/{s}/{r.choice(RESOURCES)}/{r.randint(1, 99999)} 200 {r.randint(4, 90)}ms",
    lambda r, s, c: f"POST /api/{s}/{r.choice(RESOURCES)} 201 {r.randint(12, 180)}ms",
    lambda r, s, c: f"cache hit ratio {r.uniform(80, 99.5):.1f}% for {r.choice(RESOURCES)}",
    lambda r, s, c: f"processed {r.randint(10, 500)} {r.choice(RESOURCES)} in {r.randint(20, 900)}ms",
    lambda r, s, c: f"user {r.randint(1000, 999999)} logged in via {r.choice(('password', 'sso', 'token'))}",
    lambda r, s, c: f"call to {c} succeeded in {r.randint(3, 120)}ms",
    lambda r, s, c: f"published {r.randint(1, 64)} messages to topic {s}.{r.choice(RESOURCES)}",
    lambda r, s, c: f"connection pool stats: active={r.randint(1, 9)} idle={r.randint(2, 10)} max=20",
)
WARNING_TEMPLATES: tuple[Template, ...] = (
    lambda r, s, c: f"slow query ({r.randint(800, 2500)}ms): SELECT * FROM {r.choice(RESOURCES)} WHERE id=$1",
    lambda r, s, c: f"retrying request to {c} (attempt 2/3) after {r.randint(50, 400)}ms",
    lambda r, s, c: f"deprecated API version v1 used by client {r.choice(('ios', 'android', 'web'))}",
    lambda r, s, c: f"GC pause {r.randint(150, 600)}ms exceeds target 100ms",
)
ERROR_TEMPLATES: tuple[Template, ...] = (
    lambda r, s, c: f"ValueError: invalid literal for int() with base 10: '{r.choice(('abc', 'null', ''))}'",
    lambda r, s, c: f"KeyError: '{r.choice(('locale', 'coupon'))}' in {s}/handlers.py:{r.randint(40, 400)}",
    lambda r, s, c: f"AttributeError: 'NoneType' object has no attribute '{r.choice(('id', 'email'))}'",
)


def load_factor(ts: datetime) -> float:
    """Daily traffic curve: trough around 03:00 UTC, peak around 15:00 UTC."""
    hours = ts.hour + ts.minute / 60
    return 1.0 + 0.3 * math.sin(2 * math.pi * (hours - 9) / 24)


def _logs(world: World, rng: random.Random, service: str, minute: datetime) -> list[dict[str, Any]]:
    out = []
    callee = (world.callees[service] or (service,))[0]
    for _ in range(rng.choice((1, 2, 2, 3, 3, 4, 5))):
        ts = minute + timedelta(milliseconds=rng.randint(0, 59_999))
        roll = rng.random()
        severity, template = "info", rng.choice(INFO_TEMPLATES)
        if roll < WARNING_SHARE:
            severity, template = "warning", rng.choice(WARNING_TEMPLATES)
        out.append(draft(ts, source="kubernetes", kind="log", service=service, severity=severity,
                         message=template(rng, service, callee), entity=k8s_entity(world, service)))
    if rng.random() < ERRORS_PER_SERVICE_HOUR / 60:
        ts = minute + timedelta(milliseconds=rng.randint(0, 59_999))
        out.append(draft(ts, source="sentry", kind="error", service=service, severity="error",
                         message=rng.choice(ERROR_TEMPLATES)(rng, service, callee),
                         entity={"project": service}, attributes={"level": "error"}))
    return out


def _routine_deploys(world: World, rng: random.Random, minute: datetime) -> list[dict[str, Any]]:
    """Healthy rollouts (about one per service every three hours): "what changed" is not always the cause."""
    out = []
    for service in world.services:
        if rng.random() < DEPLOYS_PER_SERVICE_HOUR / 60:
            version = f"1.{rng.randint(0, 30)}.{rng.randint(0, 9)}"
            ts = minute + timedelta(milliseconds=rng.randint(0, 59_999))
            out.append(draft(ts, source="grafana", kind="deploy", service=service, severity="info",
                             entity={"release": f"{service}@{version}"},
                             message=f"Deployed {service} {version} by ci-bot"))
    return out


def _metric_point(
    world: World, spec: MetricSpec, service: str, base: float, ts: datetime, factor: float, noise: float
) -> dict[str, Any]:
    value = base * (load_factor(ts) if spec.follows_load else 1.0) * factor * (1 + noise)
    if spec.ceiling is not None:
        value = min(value, spec.ceiling)
    if spec.source == "cloudwatch":
        entity: dict[str, str] = {"region": REGION}
        attributes = {"namespace": "Seismo/Services", "dimension.Service": service}
    else:
        entity = {**k8s_entity(world, service)}
        attributes = {"datasource": "prometheus"}
    return draft(ts, source=spec.source, kind="metric", service=service, severity="info",
                 message=f"{spec.name} of {service}", entity=entity, attributes=attributes,
                 metric={"name": spec.name, "value": round(value, 2), "unit": spec.unit})


def background(
    world: World, rng: random.Random, start: datetime, minutes: int, effects: Sequence[MetricEffect]
) -> list[tuple[dict[str, Any], str | None]]:
    """Every background event of the run, each with the incident id of the effect that bent it."""
    specs = {s: METRICS + ((DB_METRIC,) if s in world.databases else ()) for s in world.services}
    bases = {(s, m.name): rng.uniform(m.low, m.high) for s in world.services for m in specs[s]}
    out: list[tuple[dict[str, Any], str | None]] = []
    extra = random.Random(rng.getrandbits(64))  # traces and routine deploys: their own stream
    for m in range(minutes):
        minute = start + timedelta(minutes=m)
        out.extend((d, None) for d in background_traces(world, extra, minute))
        out.extend((d, None) for d in _routine_deploys(world, extra, minute))
        for i, service in enumerate(world.services):
            out.extend((d, None) for d in _logs(world, rng, service, minute))
            ts = minute + timedelta(seconds=i % 60)
            for spec in specs[service]:
                factor, owner = 1.0, None
                for effect in effects:
                    f = effect.factor(ts) if (effect.service, effect.metric) == (service, spec.name) else None
                    if f is not None:
                        factor, owner = factor * f, effect.incident_id
                noise = rng.gauss(0.0, 0.04)
                out.append((_metric_point(world, spec, service, bases[service, spec.name], ts, factor, noise),
                            owner))
    return out
