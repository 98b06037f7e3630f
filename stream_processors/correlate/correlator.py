"""Stage 2: the one cross-service correlator.  Signals in event-time order → incidents.

Pure and deterministic: :meth:`Correlator.process` takes signals in the order the
:class:`~stream_processors.correlate.align.Aligner` releases them, :meth:`Correlator.advance`
moves event time (resolution, reopening, eviction); both return the ids of the incidents
they changed.  All state is JSON data (:meth:`to_json`).

A symptom
1. **joins** the open incident it links to best (:func:`~.links.link`), when the link's
   confidence reaches ``join_confidence`` and — for a service new to the incident reached
   only through the call graph, an entity token or a template — the service's own recent
   signals are surprising against its background rate (a lone stray error in a neighbour
   stays out);
2. **merges** every other incident it links to as strongly (the older id survives, the
   other records ``merged_into``);
3. otherwise waits in its service's **pending** list, and **opens** an incident when the
   service's burst is surprising (Poisson tail < ``open_alpha``) or it is an alert or
   critical; the same service and template returning within ``reopen_grace_s`` **reopens** the resolved
   incident instead.  An opening or joining incident absorbs the pending signals of the
   services it links to, the earlier ones included (they are its onset).
An anomaly never opens or joins anything: it is kept per service, and :meth:`Correlator.view`
shows an incident with the anomalies of its services inside their time span (the oldest
incident claims a contested one) — a function of the incident and the anomalies, so the
published state is the same whether the scorer's output arrived early or hours late.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from stream_processors.correlate.annotate import annotated, covers
from stream_processors.correlate.incident_state import (
    EFFECT,
    IncidentState,
    incident_id,
    subject_refs,
)
from stream_processors.correlate.links import Link, LinkKind, link, scan, surprise
from stream_processors.correlate.recall import TEMPLATE_MEMORY_US, coherence_key, familiar, saw_template
from stream_processors.correlate.signals import Signal, SignalKind
from stream_processors.correlate.split import RETEST_EVERY, retest
from stream_processors.correlate.topology import Topology

_US = 1_000_000


@dataclass(frozen=True)
class CorrelatorConfig:
    window_s: float = 300.0
    quiet_s: float = 600.0
    lookback_s: float = 600.0
    max_evidence: int = 200
    join_confidence: float = 0.6
    open_alpha: float = 1e-3
    join_alpha: float = 0.01
    reopen_grace_s: float = 900.0
    background_horizon_s: float = 6 * 3600.0
    prior_rate_per_hour: float = 0.5
    keep_resolved_s: float = 24 * 3600.0  # late anomalies still annotate (the scorer may lag far behind)
    change_lookback_s: float = 600.0  # a change this long before a service's first symptom is evidence
    anomaly_floor: float = 0.6  # weaker anomalies are not shown on incidents


@dataclass
class Correlator:
    cfg: CorrelatorConfig = field(default_factory=CorrelatorConfig)
    topo: Topology = field(default_factory=Topology)
    incidents: dict[str, IncidentState] = field(default_factory=dict)
    pending: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    background: dict[str, list[int]] = field(default_factory=dict)  # service → unassigned symptom times
    changes: dict[str, list[list[Any]]] = field(default_factory=dict)  # service → [ts, svc, summary, id, src]
    anomalies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # per service, by (t, id)
    traces: dict[str, str] = field(default_factory=dict)  # trace id → incident id
    seen: dict[str, int] = field(default_factory=dict)  # signal id → ts (dedup horizon)
    now_us: int = 0
    since_us: int = 0  # event time of the first signal seen: how long background rates were observed
    templates: dict[str, list[int]] = field(default_factory=dict)  # "service\x00template" → [first, last]

    # -- entry points ----------------------------------------------------------------------------
    def process(self, sig: Signal) -> set[str]:
        """Fold one released signal in; return the ids of incidents it changed."""
        if sig.id in self.seen:
            return set()
        self.seen[sig.id] = sig.ts_us
        if not self.since_us or sig.ts_us < self.since_us:
            self.since_us = sig.ts_us
        self.topo.see(sig)
        if sig.kind is SignalKind.SPAN:
            return set()
        if sig.kind is SignalKind.ANOMALY:
            return self._anomaly(sig)
        if sig.template_id and sig.kind in (SignalKind.SYMPTOM, SignalKind.WEAK):
            saw_template(self.templates, sig)
        if sig.kind is SignalKind.CHANGE:
            row = [sig.ts_us, sig.service, sig.summary, sig.id, sig.source]
            self.changes.setdefault(sig.service, []).append(row)
            self.changes[sig.service] = self.changes[sig.service][-8:]
            touched = set()
            for inc in self._open():
                if sig.service in inc.services and sig.ts_us - inc.last_us <= self.cfg.window_s * _US:
                    inc.add_deploy(row, self.cfg.max_evidence)
                    touched.add(inc.id)
            return touched
        return self._symptom(sig)

    def advance(self, now_us: int) -> set[str]:
        """Move event time to ``now_us``: resolve quiet incidents, forget what is too old."""
        if now_us <= self.now_us:
            return set()
        self.now_us = now_us
        quiet, touched = int(self.cfg.quiet_s * _US), set()
        for inc in self._open():
            if now_us - inc.last_us > quiet:
                inc.status, inc.resolved_us = "resolved", inc.last_us + quiet
                inc.changes += 1
                touched.add(inc.id)
        return touched

    # -- symptoms --------------------------------------------------------------------------------
    def _symptom(self, sig: Signal) -> set[str]:
        window = int(self.cfg.window_s * _US)
        mentions = self.topo.mentions(sig)
        hit = self.traces.get(sig.trace_id, "") if sig.trace_id else ""
        own = cache(lambda: self._own_times(sig))  # only a service new to an incident needs them
        need = self.cfg.join_confidence
        links = [lk for inc in self._open()
                 if (lk := link(sig, inc, self.topo, mentions, inc.id == hit, window, own, need)) is not None]
        links = [lk for lk in links if self._admissible(sig, lk, own)]
        touched: set[str] = set()
        if links and ([lk for lk in links if lk.specific] or not mentions):
            # a trace or a named service says which incident; only such evidence merges incidents
            specific = [lk for lk in links if lk.specific]
            pool = specific or ([] if mentions else links)  # it names a service elsewhere: not these
            pool.sort(key=lambda lk: (-lk.confidence, -self._freshness(lk),
                                      self.incidents[lk.incident].opened_us, lk.incident))
            best = pool[0]
            inc = self.incidents[best.incident]
            for other in specific[1:]:
                # naming one service that is in two incidents (the cause of one, a victim in the other)
                # says which of them is fresher, not that they are one
                joins = (LinkKind.TRACE in other.kinds or LinkKind.ENTITY in other.kinds
                         or other.via != best.via)
                if joins and other.incident != best.incident and other.incident in self.incidents:
                    gone = self.incidents[other.incident]
                    if gone.is_open and inc.is_open:
                        inc = self._merge(inc, gone, touched)
                        inc.link(other.via, sig.service, other.kinds[0].value, other.confidence)
            self._fold(inc, sig, mentions, best)
            touched.add(inc.id)
            if inc.rates and inc.count % RETEST_EVERY == 0:
                for new in retest(inc, sig.ts_us):
                    self.incidents[new.id] = new
                    touched.update((inc.id, new.id))
            return touched
        if sig.kind is SignalKind.WEAK:
            return touched
        self._pend(sig)
        if not self._should_open(sig):
            return touched
        inc = self._reopen(sig) or self._new(sig)
        touched.add(inc.id)
        return touched

    def _own_times(self, sig: Signal) -> list[int]:
        """The signal's service's recent symptoms (pending, or in an open incident), its own included."""
        lookback = int(self.cfg.lookback_s * _US)
        times = [int(p["t"]) for p in self.pending.get(sig.service, ())]
        for inc in self._open():
            if sig.service in inc.services:
                times.extend(inc.symptom_times(sig.service))
        return sorted({t for t in times if abs(sig.ts_us - t) <= lookback} | {sig.ts_us})

    def _freshness(self, lk: Link) -> int:
        facts = self.incidents[lk.incident].services.get(lk.via)
        return facts.last_us if facts is not None else 0

    def _admissible(self, sig: Signal, lk: Link, own: Callable[[], list[int]]) -> bool:
        if lk.confidence < self.cfg.join_confidence:
            return False
        if not lk.specific and not EFFECT.search(sig.summary) and sig.event_kind != "alert":
            # a failure of its own in a service that so far only suffered others' is a new problem
            origin, effect, _, _ = self.incidents[lk.incident].said(sig.service)
            if effect and not origin:
                return False
        if sig.kind is SignalKind.WEAK:  # a warning line: only into a service already in, by trace
            facts = self.incidents[lk.incident].services.get(sig.service)
            return facts is not None and facts.count > 0 and LinkKind.TRACE in lk.kinds
        if lk.strong or sig.kind is not SignalKind.SYMPTOM:
            return True
        # reached only through topology/time: the service's own burst must beat its background
        window = int(self.cfg.window_s * _US)
        if lk.kinds[0] is LinkKind.RATE:  # a rate: the service's recent symptoms wherever they are
            recent = own()
        else:  # its pending symptoms and this one
            recent = [*(int(p["t"]) for p in self.pending.get(sig.service, ())), sig.ts_us]
        n = sum(1 for t in recent if abs(sig.ts_us - t) <= window)
        rate = self._rate(sig.service, sig.ts_us - window)
        return surprise(n, rate, self.cfg.window_s) < self.cfg.join_alpha

    def _should_open(self, sig: Signal) -> bool:
        if (sig.event_kind == "alert" and sig.severity >= 2) or sig.severity >= 4:
            return True
        window = int(self.cfg.window_s * _US)
        recent = [p for p in self.pending.get(sig.service, ()) if abs(sig.ts_us - int(p["t"])) <= window]
        rate = self._rate(sig.service, sig.ts_us - window)
        # one problem repeats one message: a burst of the same template (or error class) needs the
        # configured tail; a mix of unrelated errors a hundred times smaller
        key = coherence_key(sig)
        same = [int(p["t"]) for p in recent if coherence_key(Signal.from_json(p)) == key]
        return (scan(same, sig.ts_us, rate, self.cfg.window_s) < self.cfg.open_alpha
                or surprise(len(recent), rate, self.cfg.window_s) < self.cfg.open_alpha / 100)

    def _rate(self, service: str, before_us: int) -> float:
        """Unassigned symptoms per second of ``service`` before ``before_us`` (the burst under test
        left out), over the time observed so far (at least an hour), never below the prior."""
        horizon = self.cfg.background_horizon_s
        observed = min(horizon, max(3600.0, (before_us - self.since_us) / _US))
        since = before_us - int(horizon * _US)
        n = sum(1 for t in self.background.get(service, ()) if since <= t < before_us)
        return max(self.cfg.prior_rate_per_hour / 3600.0, n / observed)

    def _pend(self, sig: Signal) -> None:
        self.pending.setdefault(sig.service, []).append(sig.to_json())
        self.background.setdefault(sig.service, []).append(sig.ts_us)

    def _new(self, sig: Signal) -> IncidentState:
        mine = [p for p in self.pending.get(sig.service, []) if self._onset(sig.ts_us, int(p["t"]))]
        first = min(mine or [sig.to_json()], key=lambda p: (int(p["t"]), p["id"]))
        inc = IncidentState(incident_id(str(first["id"])), sig.ts_us, sig.ts_us, sig.ts_us)
        self.incidents[inc.id] = inc
        self._absorb_pending(inc, sig.service)
        self._absorb_neighbours(inc, sig)
        return inc

    def _onset(self, at_us: int, t_us: int) -> bool:
        """Whether a pending signal at ``t_us`` belongs to the onset of what happens at ``at_us``: up to
        ``lookback_s`` before it, and (a straggler ordered late opened it) up to ``window_s`` after."""
        return -int(self.cfg.window_s * _US) <= at_us - t_us <= int(self.cfg.lookback_s * _US)

    def _reopen(self, sig: Signal) -> IncidentState | None:
        grace = int(self.cfg.reopen_grace_s * _US)
        for inc in sorted(self.incidents.values(), key=lambda i: (i.opened_us, i.id)):
            if inc.is_open or inc.merged_into or sig.ts_us - inc.resolved_us > grace:
                continue
            facts = inc.services.get(sig.service)
            if facts is None or not facts.count:
                continue
            if sig.template_id and sig.template_id in inc.templates:  # the same problem, not just the place
                inc.status, inc.resolved_us, inc.reopened = "open", 0, inc.reopened + 1
                inc.changes += 1
                self._absorb_pending(inc, sig.service)
                return inc
        return None

    def _fold(self, inc: IncidentState, sig: Signal, mentions: tuple[str, ...], lk: Link | None) -> None:
        new_service = sig.service not in inc.services
        if lk is not None and lk.kinds[0] is LinkKind.RATE:
            inc.track(lk.via)  # the link rests on the two rates: keep them to re-test it
            inc.track(sig.service)
        seen_before = familiar(self.templates, sig, inc.opened_us - int(self.cfg.lookback_s * _US))
        inc.add(sig, self.cfg.max_evidence, mentions, seen_before)
        if sig.trace_id:
            self.traces[sig.trace_id] = inc.id
        if lk is not None and lk.via != sig.service:
            inc.link(lk.via, sig.service, lk.kinds[0].value, lk.confidence, sig.ts_us)
        for name in mentions:
            if name in inc.services:
                inc.link(sig.service, name, LinkKind.MENTION.value, 0.8)
        if new_service:
            self._absorb_pending(inc, sig.service)
            self._attach_changes(inc, sig.service)
        for name in mentions:
            if name not in inc.services and self.pending.get(name):
                self._absorb_pending(inc, name)
                inc.link(sig.service, name, LinkKind.MENTION.value, 0.8)

    def _absorb_pending(self, inc: IncidentState, service: str) -> None:
        keep: list[dict[str, Any]] = []
        take: list[dict[str, Any]] = []
        for p in self.pending.get(service, []):
            (take if self._onset(inc.last_us, int(p["t"])) else keep).append(p)
        self.pending[service] = keep
        taken_times = {int(p["t"]) for p in take}
        self.background[service] = [t for t in self.background.get(service, []) if t not in taken_times]
        for p in sorted(take, key=lambda p: (int(p["t"]), p["id"])):
            sig = Signal.from_json(p)
            self._fold(inc, sig, self.topo.mentions(sig), None)

    def _absorb_neighbours(self, inc: IncidentState, sig: Signal) -> None:
        """Pending signals of other services that name this one, or that it names, or on its node."""
        named = set(self.topo.mentions(sig)) | set(inc.mentions)
        for service in sorted(self.pending):
            if service in inc.services or not self.pending[service]:
                continue
            rows = [Signal.from_json(p) for p in self.pending[service]
                    if self._onset(inc.last_us, int(p["t"]))]
            names_us = any(sig.service in self.topo.mentions(r) for r in rows)
            shares = any(r in inc.refs for row in rows for r in subject_refs(row) if r.startswith("node="))
            if service in named or names_us or shares:
                self._absorb_pending(inc, service)
                kind = LinkKind.ENTITY if shares and not (service in named or names_us) else LinkKind.MENTION
                inc.link(sig.service, service, kind.value, 0.8 if kind is LinkKind.MENTION else 0.65)

    def _attach_changes(self, inc: IncidentState, service: str) -> None:
        lookback = int(self.cfg.change_lookback_s * _US)
        first = inc.services[service].first_us if service in inc.services else inc.opened_us
        for row in self.changes.get(service, []):
            if first - lookback <= int(row[0]) <= inc.last_us:
                inc.add_deploy(row, self.cfg.max_evidence)

    def _anomaly(self, sig: Signal) -> set[str]:
        rows = self.anomalies.setdefault(sig.service, [])
        bisect.insort(rows, sig.to_json(), key=lambda a: (int(a["t"]), str(a["id"])))
        return {i.id for i in self.incidents.values()
                if not i.merged_into and self._covers(i, sig.service, sig.ts_us)}

    def _covers(self, inc: IncidentState, service: str, ts_us: int) -> bool:
        return covers(inc, service, ts_us, int(self.cfg.lookback_s * _US), int(self.cfg.window_s * _US))

    def view(self, inc: IncidentState) -> IncidentState:
        """``inc`` with the anomalies of its services in their time span (a copy; ``inc`` is unchanged)."""
        return annotated(inc, self.incidents.values(), self.anomalies, self.cfg)

    def _merge(self, keep: IncidentState, gone: IncidentState, touched: set[str]) -> IncidentState:
        """Merge two incidents; the older id survives (returned), the other records where it went."""
        if keep.opened_us > gone.opened_us or (keep.opened_us == gone.opened_us and keep.id > gone.id):
            keep, gone = gone, keep
        keep.absorb(gone, self.cfg.max_evidence)
        for trace, iid in list(self.traces.items()):
            if iid == gone.id:
                self.traces[trace] = keep.id
        touched.update((keep.id, gone.id))
        return keep

    def _open(self) -> list[IncidentState]:
        return [i for i in self.incidents.values() if i.is_open]

    def evict(self) -> None:
        """Forget what is too old to matter at the current event time (call after publishing)."""
        now_us = self.now_us
        lookback = int(self.cfg.lookback_s * _US)
        # past every window a later decision may look back through (decisions never depend on when it ran)
        horizon = int((self.cfg.background_horizon_s + self.cfg.window_s) * _US)
        keep_resolved = int(max(self.cfg.keep_resolved_s, self.cfg.reopen_grace_s) * _US)
        for service in list(self.pending):
            self.pending[service] = [p for p in self.pending[service] if now_us - int(p["t"]) <= lookback]
        for service in list(self.background):
            self.background[service] = [t for t in self.background[service] if now_us - t <= horizon]
        keep_anomalies = keep_resolved + int(self.cfg.background_horizon_s * _US)
        for service in list(self.anomalies):
            self.anomalies[service] = [a for a in self.anomalies[service]
                                       if now_us - int(a["t"]) <= keep_anomalies]
        for iid in [i.id for i in self.incidents.values() if not i.is_open
                    and now_us - max(i.resolved_us, i.last_us) > keep_resolved]:
            del self.incidents[iid]
        memory = TEMPLATE_MEMORY_US + int(self.cfg.window_s * _US)
        self.templates = {k: v for k, v in self.templates.items() if now_us - v[1] <= memory}
        if len(self.traces) > 20_000:
            live = set(self.incidents)
            self.traces = {t: i for t, i in self.traces.items() if i in live}
        if len(self.seen) > 50_000:
            self.seen = {k: v for k, v in self.seen.items() if now_us - v <= keep_resolved}

    # -- JSON ------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "topo": self.topo.to_json(), "inc": {k: v.to_json() for k, v in self.incidents.items()},
            "pend": self.pending, "bg": self.background, "chg": self.changes, "anom": self.anomalies,
            "tr": self.traces, "seen": self.seen, "now": self.now_us,
            "since": self.since_us, "tpl": self.templates,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any], cfg: CorrelatorConfig) -> Correlator:
        return cls(
            cfg, Topology.from_json(d.get("topo", {})),
            {k: IncidentState.from_json(v) for k, v in d.get("inc", {}).items()},
            {k: list(v) for k, v in d.get("pend", {}).items()},
            {k: list(v) for k, v in d.get("bg", {}).items()},
            {k: [list(r) for r in v] for k, v in d.get("chg", {}).items()},
            {k: list(v) for k, v in d.get("anom", {}).items()}, dict(d.get("tr", {})),
            {k: int(v) for k, v in d.get("seen", {}).items()}, int(d.get("now", 0)), int(d.get("since", 0)),
            {k: list(v) for k, v in d.get("tpl", {}).items()},
        )
