"""What the correlator learns about the estate: services, the call graph, nodes, entity tokens.

Pure, JSON data.  Sources of topology:

* **spans** (sampled by trace id): a span whose parent span ran in another service
  gives the edge ``parent service → child service`` (caller → callee);
* **mentions**: a symptom naming another known service ("upstream payments returned
  503", "calling https://auth.prod.svc") gives ``service → named service``;
* **entity resolution**: tokens every source attaches (node, release ``svc@1.2``, Sentry
  project, log group, DB instance, CloudWatch ``dimension.Service``) resolve to the
  service they belong to, so an alarm labelled with a service joins that service.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from stream_processors.correlate.signals import Signal

_TOKENS = re.compile(r"[a-z0-9][a-z0-9_-]*[a-z0-9]", re.I)
_PATH = re.compile(r"(?<![/\w:])/\S*")  # a URL path (/api/cart/orders): resources, not services
SPAN_TTL_US = 300 * 1_000_000
MAX_SPANS = 20_000


@dataclass
class Topology:
    services: list[str] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)  # "caller>callee" → times seen
    node_of: dict[str, str] = field(default_factory=dict)
    spans: dict[str, list[Any]] = field(default_factory=dict)  # span id → [service, ts_us]
    orphans: list[list[Any]] = field(default_factory=list)  # [parent id, service, ts_us]: parent not yet seen
    _known: set[str] = field(default_factory=set, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._known = set(self.services)

    # -- learning --------------------------------------------------------------------------------
    def see(self, sig: Signal) -> None:
        """Learn what a signal says: its service, its node, its span edge."""
        if sig.service not in self._known:
            self._known.add(sig.service)
            self.services.append(sig.service)
        for ref in sig.refs:
            if ref.startswith("node="):
                self.node_of[sig.service] = ref[5:]
        if sig.span_id:
            self._span(sig)

    def _span(self, sig: Signal) -> None:
        self.spans[sig.span_id] = [sig.service, sig.ts_us]
        if sig.parent_id:
            parent = self.spans.get(sig.parent_id)
            if parent is not None:
                self.add_call(str(parent[0]), sig.service)
            else:
                self.orphans.append([sig.parent_id, sig.service, sig.ts_us])
        still = []
        for pid, service, ts in self.orphans:
            if pid == sig.span_id:
                self.add_call(sig.service, str(service))
            elif ts >= sig.ts_us - SPAN_TTL_US:
                still.append([pid, service, ts])
        self.orphans = still[-2000:]
        if len(self.spans) > MAX_SPANS:
            cutoff = sig.ts_us - SPAN_TTL_US
            self.spans = {k: v for k, v in self.spans.items() if int(v[1]) >= cutoff}

    def add_call(self, caller: str, callee: str) -> None:
        if caller != callee:
            key = f"{caller}>{callee}"
            self.calls[key] = self.calls.get(key, 0) + 1

    # -- questions -------------------------------------------------------------------------------
    def calls_between(self, a: str, b: str) -> bool:
        return f"{a}>{b}" in self.calls or f"{b}>{a}" in self.calls

    def callees(self, service: str) -> list[str]:
        prefix = f"{service}>"
        return sorted(k[len(prefix):] for k in self.calls if k.startswith(prefix))

    def mentions(self, sig: Signal) -> tuple[str, ...]:
        """Known services (other than its own) that a signal's text or entity tokens name."""
        words = set(_TOKENS.findall(_PATH.sub(" ", sig.summary.lower())))
        for ref in sig.refs:
            value = ref.split("=", 1)[1].lower()
            words.add(value)
            words.update(_TOKENS.findall(value.split("@", 1)[0]))
        found = sorted(s for s in self._known if s != sig.service and s.lower() in words)
        return tuple(found)

    def to_json(self) -> dict[str, Any]:
        return {"sv": self.services, "calls": self.calls, "node": self.node_of, "spans": self.spans,
                "orph": self.orphans}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Topology:
        return cls(list(d.get("sv", [])), dict(d.get("calls", {})), dict(d.get("node", {})),
                   {k: list(v) for k, v in d.get("spans", {}).items()}, [list(x) for x in d.get("orph", [])])
