"""Distributed traces for ``seismo simulate``: spans with trace ids and parents over the call graph.

Pure: every function draws from the ``random.Random`` it is given.

* :func:`background_traces` — once a minute a request enters at each entry service and
  walks the call graph (one span per service it reaches, each the child of its
  caller's span): the spans a tracing backend (Tempo behind Grafana) would export;
* :func:`error_trace` — one failing request of a cascade: an errored span in the root
  cause and in a caller, with the trace id the caller's error log line carries.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from producers.simulate_world import World, draft, k8s_entity

SOURCE = "grafana"
OPERATIONS = ("GET /api/{s}/items", "POST /api/{s}/orders", "GET /api/{s}/health", "PUT /api/{s}/carts")


def new_id(rng: random.Random, bits: int) -> str:
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


def span(world: World, rng: random.Random, ts: datetime, service: str, trace_id: str, span_id: str,
         parent: str | None, *, error: bool = False, message: str = "") -> dict[str, Any]:
    attributes = {"trace_id": trace_id, "span_id": span_id, "service.name": service,
                  "status": "error" if error else "ok"}
    if parent:
        attributes["parent_span_id"] = parent
    op = rng.choice(OPERATIONS).format(s=service)
    text = message or f"{op} {rng.randint(2, 180)}ms"
    return draft(ts, source=SOURCE, kind="span", service=service, severity="error" if error else "info",
                 message=text, entity=k8s_entity(world, service), attributes=attributes)


def background_traces(world: World, rng: random.Random, minute: datetime) -> list[dict[str, Any]]:
    """One trace per entry service (a service nobody calls) starting in ``minute``."""
    out: list[dict[str, Any]] = []
    for entry in (s for s in world.services if not world.callers(s)):
        trace_id = new_id(rng, 128)
        start = minute + timedelta(milliseconds=rng.randint(0, 55_000))
        stack: list[tuple[str, str | None, datetime]] = [(entry, None, start)]
        seen: set[str] = set()
        while stack:
            service, parent, ts = stack.pop()
            if service in seen:
                continue
            seen.add(service)
            span_id = new_id(rng, 64)
            out.append(span(world, rng, ts, service, trace_id, span_id, parent))
            for callee in reversed(world.callees[service]):
                stack.append((callee, span_id, ts + timedelta(milliseconds=rng.randint(1, 40))))
    return out


def error_trace(world: World, rng: random.Random, ts: datetime, root: str, caller: str | None,
                message: str) -> tuple[str, list[dict[str, Any]]]:
    """(trace id, spans) of one request failing in ``root``, called by ``caller`` when given."""
    trace_id = new_id(rng, 128)
    spans: list[dict[str, Any]] = []
    parent = None
    if caller is not None:
        parent = new_id(rng, 64)
        spans.append(span(world, rng, ts, caller, trace_id, parent, None, error=True,
                          message=f"call to {root} failed: {message}"[:160]))
    spans.append(span(world, rng, ts + timedelta(milliseconds=rng.randint(1, 30)), root, trace_id,
                      new_id(rng, 64), parent, error=True, message=message[:160]))
    return trace_id, spans
