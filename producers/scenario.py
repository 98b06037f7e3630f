"""The small built-in multi-source scenario ``seismo demo`` feeds.

Three services with background traffic and two injected incidents:

* **payments** — a bad deploy: Grafana deploy annotation, Sentry error spike,
  Kubernetes CrashLoopBackOff, a CloudWatch latency alarm, a Grafana alert;
* **inventory** — database connection exhaustion in its logs and CloudWatch.

Event ids are derived from the content, so one ``start`` gives one set of ids.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from producers.ingest import parse_event
from schemas.models import Event

SERVICES = ("checkout", "payments", "inventory")


def _ev(ts: datetime, **fields: Any) -> dict[str, Any]:
    return {"timestamp": ts.isoformat().replace("+00:00", "Z"), "attributes": {}, **fields}


def demo_events(start: datetime | None = None, seed: int = 7) -> list[Event]:
    """The scenario's events, ordered by time, starting at ``start`` (default: 40 min ago)."""
    rng = random.Random(seed)
    t0 = start or datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=40)
    out: list[dict[str, Any]] = []
    for minute in range(36):
        for svc in SERVICES:
            ts = t0 + timedelta(minutes=minute, seconds=rng.randint(0, 50))
            out.append(_ev(ts, source="kubernetes", kind="log", service=svc, severity="info",
                           entity={"namespace": "shop", "pod": f"{svc}-7d9f8b6c5-x2x9k"},
                           message=f"GET /api/{svc}/items/{rng.randint(1, 999)} 200 "
                                   f"{rng.randint(8, 40)}ms"))
            out.append(_ev(ts, source="cloudwatch", kind="metric", service=svc, severity="info",
                           entity={"region": "eu-west-1"}, message="p95 latency",
                           metric={"name": "latency_p95_ms",
                                   "value": round(rng.gauss(120, 10), 1), "unit": "ms"}))
    bad = t0 + timedelta(minutes=10)
    out.append(_ev(bad, source="grafana", kind="deploy", service="payments", severity="info",
                   entity={"release": "payments@2.4.1"}, message="Deployed payments 2.4.1"))
    for i in range(6):
        out.append(_ev(bad + timedelta(seconds=40 + 15 * i), source="sentry", kind="error",
                       service="payments", severity="error", entity={"project": "payments",
                       "release": "payments@2.4.1"},
                       message="KeyError: 'currency' in payments/api/charge.py:88 charge()"))
    out.append(_ev(bad + timedelta(minutes=2), source="kubernetes", kind="event",
                   service="payments", severity="warning",
                   entity={"namespace": "shop", "pod": "payments-5f6d7c8b9-abcde"},
                   message="Back-off restarting failed container payments (CrashLoopBackOff)"))
    out.append(_ev(bad + timedelta(minutes=2, seconds=30), source="kubernetes", kind="event",
                   service="payments", severity="error",
                   entity={"namespace": "shop", "pod": "payments-5f6d7c8b9-abcde"},
                   message="Pod payments-5f6d7c8b9-abcde restarted 5 times: CrashLoopBackOff"))
    out.append(_ev(bad + timedelta(minutes=3), source="cloudwatch", kind="alert",
                   service="payments", severity="critical", entity={"region": "eu-west-1"},
                   message="ALARM: payments-p95-latency > 800 ms for 3 datapoints"))
    out.append(_ev(bad + timedelta(minutes=3, seconds=20), source="grafana", kind="alert",
                   service="payments", severity="error",
                   message="[FIRING] PaymentsErrorRate: 5xx ratio 12% > 2%"))
    db = t0 + timedelta(minutes=22)
    for i in range(5):
        out.append(_ev(db + timedelta(seconds=20 * i), source="kubernetes", kind="log",
                       service="inventory", severity="error",
                       entity={"namespace": "shop", "pod": "inventory-6c7d8e9f0-qwert"},
                       message="psycopg.OperationalError: connection pool exhausted "
                               f"(max=20, waiting={30 + i})"))
    out.append(_ev(db + timedelta(minutes=1), source="cloudwatch", kind="alert",
                   service="inventory", severity="critical", entity={"region": "eu-west-1"},
                   message="ALARM: inventory-db DatabaseConnections > 95 for 2 datapoints"))
    events = [parse_event(e) for e in out]
    events.sort(key=lambda e: (e.timestamp, e.id))
    return events
