"""What the correlator keeps per incident, as JSON data (no pickle), and how signals fold into it.

Pure.  The published :class:`~schemas.models.Incident` is derived from this at the end of
a batch (:mod:`.publish`); the revision is a count of the changes folded in (signals,
anomalies, lifecycle transitions, merges), so it is the same however the changes were
batched.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from stream_processors.correlate.lagrate import KEEP_TIMES
from stream_processors.correlate.signals import Signal, SignalKind

# What a symptom says about its own service: the origin of a problem, or the effect of another's.
ORIGIN = re.compile(r"exhausted|OOMKilled|out of memory|NearLimit|renewal failed|saturat|top consumer|"
                    r"disk full|no space left|deadlock|panic:", re.I)
EFFECT = re.compile(r"throttl|upstream|timed? ?out|timeout|did not respond|connection reset|"
                    r"connection refused|\b50[234]\b|circuit breaker|call to \S+ failed|"
                    r"calling https?://", re.I)
RATE_LINK = "lagged-rate"  # the kind of a graph edge that rests on two services' rates alone
EvidenceRow = list[Any]  # [ts_us, event_id, source, kind, service, severity_rank, summary]


def subject_refs(sig: Signal) -> list[str]:
    """Entity tokens that say what a signal is about: a node only when the text names it (a pod's
    node is where it runs, not what is wrong), the others always."""
    return [r for r in sig.refs if not r.startswith("node=") or r[5:] in sig.summary]


def incident_id(first_signal_id: str) -> str:
    digest = hashlib.sha1(first_signal_id.encode(), usedforsecurity=False)
    return f"inc-{digest.hexdigest()[:16]}"


@dataclass
class ServiceFacts:
    """One service inside one incident."""

    first_us: int
    last_us: int
    count: int = 0
    severity: int = 1
    anomaly: float = 0.0  # sum of anomaly scores
    anomaly_first_us: int = 0
    sources: list[str] = field(default_factory=list)
    example: str = ""  # the first symptom's summary

    def to_json(self) -> list[Any]:
        return [self.first_us, self.last_us, self.count, self.severity, self.anomaly, self.anomaly_first_us,
                self.sources, self.example]

    @classmethod
    def from_json(cls, d: list[Any]) -> ServiceFacts:
        return cls(int(d[0]), int(d[1]), int(d[2]), int(d[3]), float(d[4]), int(d[5]), list(d[6]), str(d[7]))

    def onset_us(self, anomaly_floor: float = 0.5) -> int:
        """When this service started to misbehave: its first symptom or first strong anomaly."""
        if self.anomaly_first_us and self.anomaly >= anomaly_floor:
            return min(self.first_us, self.anomaly_first_us) if self.count else self.anomaly_first_us
        return self.first_us


@dataclass
class IncidentState:
    id: str
    opened_us: int
    detected_us: int
    last_us: int
    status: str = "open"
    resolved_us: int = 0
    changes: int = 0  # revision counter: every fold, transition and merge
    reopened: int = 0
    services: dict[str, ServiceFacts] = field(default_factory=dict)
    evidence: list[EvidenceRow] = field(default_factory=list)
    count: int = 0
    templates: dict[str, int] = field(default_factory=dict)
    template_text: dict[str, str] = field(default_factory=dict)
    shapes: dict[str, str] = field(default_factory=dict)  # template id → SimHash of its embedding
    mentions: list[str] = field(default_factory=list)  # services its signals name
    named: dict[str, int] = field(default_factory=dict)  # "a>b": a's signals named b (a depends on b)
    # service → [origin phrases, effect phrases, familiar templates (seen well before), new templates]
    hints: dict[str, list[int]] = field(default_factory=dict)
    refs: list[str] = field(default_factory=list)  # entity tokens its signals carry
    links: dict[str, list[Any]] = field(default_factory=dict)  # "a|b" → [kind, confidence]
    deploys: list[list[Any]] = field(default_factory=list)  # [ts_us, service, summary, id]
    merged_from: list[str] = field(default_factory=list)
    merged_into: str = ""
    # service → its symptom times, kept for the services at either end of a link that rested on
    # their rates moving together (:mod:`.lagrate`), so the link can be re-tested as they go on
    rates: dict[str, list[int]] = field(default_factory=dict)
    split_from: str = ""  # the incident this one split off from
    split_into: list[str] = field(default_factory=list)  # incidents that split off from this one

    @property
    def is_open(self) -> bool:
        return self.status == "open"

    # -- folding ---------------------------------------------------------------------------------
    def add(self, sig: Signal, max_evidence: int, mentions: tuple[str, ...] = (), familiar: bool | None = None
            ) -> None:
        """Fold one symptom/weak signal (already deduplicated) into the incident; ``familiar`` says
        whether its template was seen well before the incident (None: no template)."""
        facts = self.services.get(sig.service)
        if facts is None:
            facts = self.services[sig.service] = ServiceFacts(sig.ts_us, sig.ts_us, example=sig.summary)
        facts.first_us, facts.last_us = min(facts.first_us, sig.ts_us), max(facts.last_us, sig.ts_us)
        if sig.kind is SignalKind.SYMPTOM:
            hint = self.hints.setdefault(sig.service, [0, 0, 0, 0])
            if familiar is not None:
                hint[2 if familiar else 3] += 1
            if EFFECT.search(sig.summary):
                hint[1] += 1
            elif ORIGIN.search(sig.summary):
                hint[0] += 1
            if not facts.count or sig.ts_us < facts.first_us:
                facts.example = sig.summary
            facts.count += 1
        facts.severity = max(facts.severity, sig.severity)
        if sig.source and sig.source not in facts.sources:
            facts.sources.append(sig.source)
            facts.sources.sort()
        self.opened_us = min(self.opened_us, sig.ts_us)
        if sig.kind is SignalKind.SYMPTOM:  # a warning line does not keep an incident alive
            self.last_us = max(self.last_us, sig.ts_us)
        if sig.template_id:
            self.templates[sig.template_id] = self.templates.get(sig.template_id, 0) + 1
            if sig.template_id not in self.template_text and len(self.template_text) < 50:
                self.template_text[sig.template_id] = sig.extra.get("template", sig.summary)[:160]
            shape = sig.extra.get("shape", "")
            if shape and sig.template_id not in self.shapes and len(self.shapes) < 50:
                self.shapes[sig.template_id] = shape
        for name in mentions:
            if name != sig.service:
                key = f"{sig.service}>{name}"
                self.named[key] = self.named.get(key, 0) + 1
                if name not in self.mentions:
                    self.mentions.append(name)
        for ref in subject_refs(sig):
            if ref not in self.refs and len(self.refs) < 100:
                self.refs.append(ref)
        times = self.rates.get(sig.service)
        if times is not None and sig.kind is SignalKind.SYMPTOM:
            bisect.insort(times, sig.ts_us)
            del times[:-KEEP_TIMES]
        row = [sig.ts_us, sig.id, sig.source, sig.event_kind, sig.service, sig.severity, sig.summary]
        self._evidence(row, max_evidence)
        self.count += 1
        self.changes += 1

    def add_anomaly(self, sig: Signal, max_evidence: int) -> None:
        facts = self.services.get(sig.service)
        if facts is None:
            facts = self.services[sig.service] = ServiceFacts(sig.ts_us, sig.ts_us)
        facts.anomaly = round(facts.anomaly + sig.score, 6)
        if not facts.anomaly_first_us or sig.ts_us < facts.anomaly_first_us:
            facts.anomaly_first_us = sig.ts_us
        event_id = sig.extra.get("event_id") or sig.id
        self._evidence([sig.ts_us, event_id, sig.source, f"anomaly:{sig.extra.get('signal', '')}"[:60],
                        sig.service, sig.severity, sig.summary], max_evidence)
        self.changes += 1

    def add_deploy(self, row: list[Any], max_evidence: int) -> None:
        if any(d[3] == row[3] for d in self.deploys):
            return
        self.deploys.append(row)
        self.deploys.sort(key=lambda d: (d[0], d[3]))
        self._evidence([row[0], row[3], row[4], "deploy", row[1], 1, row[2]], max_evidence)
        self.changes += 1

    def link(self, a: str, b: str, kind: str, confidence: float, since_us: int = 0) -> None:
        """Record an edge of the correlation graph; the most confident reason shows, and any other
        reason replaces one that rested on the rates (:data:`RATE_LINK`, which keeps ``since_us``, when
        it was made, to be re-tested on what came after): it no longer can fall apart."""
        if a == b:
            return
        key = "|".join(sorted((a, b)))
        old = self.links.get(key)
        if old is None or (kind != RATE_LINK and old[0] == RATE_LINK) or (
                confidence > float(old[1]) and (kind == RATE_LINK) == (old[0] == RATE_LINK)):
            self.links[key] = [kind, round(confidence, 3), *([since_us] if kind == RATE_LINK else [])]

    def symptom_times(self, service: str) -> list[int]:
        """The service's symptom times: all of them where kept (:attr:`rates`), else those in the
        evidence."""
        kept = self.rates.get(service)
        if kept is not None:
            return kept
        return [int(r[0]) for r in self.evidence
                if r[4] == service and not str(r[3]).startswith(("anomaly", "deploy"))]

    def track(self, service: str) -> None:
        """Keep ``service``'s symptom times from now on (seeded with those in the evidence)."""
        if service not in self.rates:
            self.rates[service] = sorted(set(self.symptom_times(service)))[-KEEP_TIMES:]

    def rate_links(self) -> list[tuple[str, str]]:
        """The edges that rest on the rates alone, as service pairs (sorted)."""
        pairs = (k.partition("|") for k, v in self.links.items() if v[0] == RATE_LINK)
        return sorted((a, b) for a, _, b in pairs)

    def said(self, service: str) -> tuple[int, int, int, int]:
        """What ``service``'s symptoms said (:attr:`hints`): own failures, effects of another's,
        familiar templates, new templates (zeros for a service without hints)."""
        origin, effect, familiar, new = [*self.hints.get(service, []), 0, 0, 0, 0][:4]
        return origin, effect, familiar, new

    def _evidence(self, row: EvidenceRow, max_evidence: int) -> None:
        pos = bisect.bisect_left(self.evidence, (row[0], row[1]), key=lambda r: (r[0], r[1]))
        if pos < len(self.evidence) and self.evidence[pos][1] == row[1]:
            return
        if len(self.evidence) >= max_evidence and pos >= max_evidence:
            return
        self.evidence.insert(pos, row)
        del self.evidence[max_evidence:]

    def absorb(self, other: IncidentState, max_evidence: int) -> None:
        """Merge ``other`` (the younger) into this one; ``other`` records where it went."""
        for name, f in other.services.items():
            mine = self.services.get(name)
            if mine is None:
                self.services[name] = ServiceFacts.from_json(f.to_json())
                continue
            mine.first_us, mine.last_us = min(mine.first_us, f.first_us), max(mine.last_us, f.last_us)
            mine.count += f.count
            mine.severity = max(mine.severity, f.severity)
            mine.anomaly = round(mine.anomaly + f.anomaly, 6)
            earlier = not mine.anomaly_first_us or f.anomaly_first_us < mine.anomaly_first_us
            if f.anomaly_first_us and earlier:
                mine.anomaly_first_us = f.anomaly_first_us
            mine.sources = sorted({*mine.sources, *f.sources})
        for row in other.evidence:
            self._evidence(row, max_evidence)
        for tid, n in other.templates.items():
            self.templates[tid] = self.templates.get(tid, 0) + n
        for tid, text in other.template_text.items():
            self.template_text.setdefault(tid, text)
        for tid, shape in other.shapes.items():
            if len(self.shapes) < 50:
                self.shapes.setdefault(tid, shape)
        self.mentions.extend(m for m in other.mentions if m not in self.mentions)
        for key, n in other.named.items():
            self.named[key] = self.named.get(key, 0) + n
        for name, counts in other.hints.items():
            mine_hint = self.hints.setdefault(name, [0, 0, 0, 0])
            for i, n in enumerate(counts):
                mine_hint[i] += n
        self.refs.extend(r for r in other.refs if r not in self.refs)
        for key, value in other.links.items():
            if key not in self.links or float(value[1]) > float(self.links[key][1]):
                self.links[key] = value
        for row in other.deploys:
            if all(d[3] != row[3] for d in self.deploys):
                self.deploys.append(row)
        for name, times in other.rates.items():
            self.rates[name] = sorted({*self.rates.get(name, []), *times})[-KEEP_TIMES:]
        self.split_into.extend(i for i in other.split_into if i not in self.split_into)
        self.deploys.sort(key=lambda d: (d[0], d[3]))
        self.opened_us = min(self.opened_us, other.opened_us)
        self.detected_us = min(self.detected_us, other.detected_us)
        self.last_us = max(self.last_us, other.last_us)
        self.count += other.count
        self.merged_from = sorted({*self.merged_from, other.id, *other.merged_from})
        self.changes += other.changes + 1
        other.status, other.merged_into, other.resolved_us = "resolved", self.id, other.last_us
        other.changes += 1

    def split_off(self, services: set[str], new_id: str, at_us: int) -> IncidentState:
        """Move ``services`` (a part no longer linked to the rest) into a new open incident ``new_id``,
        detected at ``at_us``; both record the split.  Templates, shapes and entity tokens stay here
        (they are not kept per service); the new incident gathers its own as its signals go on."""
        mine = {n: f for n, f in self.services.items() if n in services}
        new = IncidentState(new_id, min(f.first_us for f in mine.values()), at_us,
                            max(f.last_us for f in mine.values()), split_from=self.id)
        for name in mine:
            new.services[name] = self.services.pop(name)
            if name in self.hints:
                new.hints[name] = self.hints.pop(name)
            if name in self.rates:
                new.rates[name] = self.rates.pop(name)
        new.evidence = [r for r in self.evidence if r[4] in services]
        self.evidence = [r for r in self.evidence if r[4] not in services]
        new.deploys = [d for d in self.deploys if d[1] in services]
        self.deploys = [d for d in self.deploys if d[1] not in services]
        for key in [k for k in self.links if set(k.split("|", 1)) & services]:
            value = self.links.pop(key)
            if set(key.split("|", 1)) <= services:
                new.links[key] = value
        for key in [k for k in self.named if k.split(">", 1)[0] in services]:
            new.named[key] = self.named.pop(key)
        new.mentions = sorted({k.split(">", 1)[1] for k in new.named})
        new.count = sum(f.count for f in new.services.values())
        self.count -= new.count
        if self.services:
            self.opened_us = min(f.first_us for f in self.services.values())
            self.last_us = max(f.last_us for f in self.services.values())
        self.split_into.append(new_id)
        self.changes += 1
        new.changes = 1
        return new

    # -- JSON ------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "o": self.opened_us, "d": self.detected_us, "l": self.last_us, "st": self.status,
            "r": self.resolved_us, "c": self.changes, "re": self.reopened,
            "sv": {k: v.to_json() for k, v in self.services.items()}, "ev": self.evidence, "n": self.count,
            "tp": self.templates, "tt": self.template_text, "sh": self.shapes, "mn": self.mentions,
            "nm": self.named,
            "hn": self.hints, "rf": self.refs,
            "lk": self.links, "dp": self.deploys, "mf": self.merged_from, "mi": self.merged_into,
            **({"rt": self.rates} if self.rates else {}),
            **({"sf": self.split_from} if self.split_from else {}),
            **({"si": self.split_into} if self.split_into else {}),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> IncidentState:
        return cls(
            id=d["id"], opened_us=int(d["o"]), detected_us=int(d["d"]), last_us=int(d["l"]), status=d["st"],
            resolved_us=int(d["r"]), changes=int(d["c"]), reopened=int(d["re"]),
            services={k: ServiceFacts.from_json(v) for k, v in d["sv"].items()},
            evidence=[list(r) for r in d["ev"]], count=int(d["n"]), templates=dict(d["tp"]),
            template_text=dict(d["tt"]), shapes=dict(d.get("sh", {})), mentions=list(d["mn"]),
            named=dict(d.get("nm", {})),
            hints={k: list(v) for k, v in d.get("hn", {}).items()},
            refs=list(d["rf"]),
            links={k: list(v) for k, v in d["lk"].items()}, deploys=[list(x) for x in d["dp"]],
            merged_from=list(d["mf"]), merged_into=d["mi"],
            rates={k: [int(t) for t in v] for k, v in d.get("rt", {}).items()},
            split_from=str(d.get("sf", "")), split_into=list(d.get("si", [])),
        )
