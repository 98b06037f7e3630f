"""Root-cause ranking of one incident: which service started it, and why a person should believe it.

Pure.  Three pieces of evidence per service of the incident (and per service its
signals name without having signals of its own):

* **onset order** — when the service started to misbehave: its first symptom, or its
  first strong anomaly if earlier (the scorer's change point on that signal);
* **what changed** — a deploy, release or config change of the service up to 15 minutes
  before its onset;
* **dependency walk** — a personalized PageRank over the incident's dependency graph
  (caller → callee, from spans and from symptoms naming a service), teleporting in
  proportion to each service's anomaly strength: trouble flows from callers down to
  the dependency that causes it, so the walk pools at the root.

The score is a weighted sum; every candidate's ``reason`` names the signals, times and
edges behind it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from stream_processors.correlate.incident_state import IncidentState
from stream_processors.correlate.topology import Topology

_US = 1_000_000
WEIGHTS = {"walk": 0.35, "onset": 0.3, "change": 0.15, "origin": 0.2, "novel": 0.2}
CHANGE_BEFORE_S = 900.0
CHANGE_AFTER_S = 120.0


@dataclass(frozen=True)
class Candidate:
    service: str
    score: float
    reason: str


def _hhmmss(us: int) -> str:
    return datetime.fromtimestamp(us / _US, UTC).strftime("%H:%M:%S")


def dependency_edges(inc: IncidentState, topo: Topology, names: list[str]) -> dict[str, set[str]]:
    """caller → callees among ``names``: learned call edges, plus "A's symptoms name B" (A depends on B)."""
    inside = set(names)
    deps: dict[str, set[str]] = {n: set() for n in names}
    for key in topo.calls:
        caller, callee = key.split(">", 1)
        if caller in inside and callee in inside:
            deps[caller].add(callee)
    for key in inc.named:
        a, b = key.split(">", 1)
        if a in inside and b in inside and f"{b}>{a}" not in topo.calls:
            deps[a].add(b)
    return deps


def personalized_pagerank(deps: dict[str, set[str]], strength: dict[str, float], damping: float = 0.85,
                          rounds: int = 40) -> dict[str, float]:
    names = sorted(deps)
    total = sum(strength.values()) or 1.0
    teleport = {n: strength.get(n, 0.0) / total for n in names}
    rank = dict(teleport)
    for _ in range(rounds):
        nxt = {n: (1 - damping) * teleport[n] for n in names}
        for n in names:
            outs = sorted(deps[n])
            if not outs:
                nxt[n] += damping * rank[n]  # a dependency with no dependency of its own keeps its mass
                continue
            weights = [strength.get(o, 0.0) + 0.1 for o in outs]
            wsum = sum(weights)
            for o, w in zip(outs, weights, strict=True):
                nxt[o] += damping * rank[n] * w / wsum
        rank = nxt
    return rank


def rank(inc: IncidentState, topo: Topology, changes: dict[str, list[list[object]]]) -> list[Candidate]:
    """Candidates, best first (at most 5)."""
    names = sorted(set(inc.services) | {m for m in inc.mentions if m not in inc.services})
    if not names:
        return []
    strength: dict[str, float] = {}
    onset: dict[str, int] = {}
    for n in names:
        f = inc.services.get(n)
        if f is None:  # named by others, silent itself
            strength[n] = 0.5
            onset[n] = inc.last_us
            continue
        strength[n] = math.log1p(f.count) * (1 + 0.25 * max(0, f.severity - 2)) + f.anomaly + 0.2
        onset[n] = f.onset_us()
    deps = dependency_edges(inc, topo, names)
    walk = personalized_pagerank(deps, strength)
    top = max(walk.values()) or 1.0
    order = sorted(names, key=lambda n: (onset[n], n))
    changed: dict[str, list[object]] = {}
    rows = [*inc.deploys, *(r for n in names for r in changes.get(n, []))]
    for row in sorted(rows, key=lambda r: (int(str(r[0])), str(r[3]))):
        svc, ts = str(row[1]), int(str(row[0]))
        if svc in onset and onset[svc] - CHANGE_BEFORE_S * _US <= ts <= onset[svc] + CHANGE_AFTER_S * _US:
            changed[svc] = row
    out = []
    for n in names:
        pos = order.index(n)
        origin, effect, familiar, new = [*inc.hints.get(n, []), 0, 0, 0, 0][:4]
        said = 1.0 if origin else (-0.5 if effect else 0.0)
        novel = -1.0 if familiar and not new else 0.0  # only symptoms it showed before: a standing problem
        parts = {"walk": walk[n] / top, "onset": 1.0 / (1 + pos), "change": 1.0 if n in changed else 0.0,
                 "origin": said, "novel": novel}
        score = sum(WEIGHTS[k] * v for k, v in parts.items())
        reason = _reason(inc, n, pos, onset[n], changed.get(n), deps, walk[n])
        out.append(Candidate(n, round(score, 4), reason))
    out.sort(key=lambda c: (-c.score, c.service))
    return out[:5]


def _reason(inc: IncidentState, n: str, pos: int, onset_us: int, change: list[object] | None,
            deps: dict[str, set[str]], walk: float) -> str:
    f = inc.services.get(n)
    bits = []
    if f is None:
        bits.append("named by the symptoms of " + ", ".join(sorted(d for d, cs in deps.items() if n in cs)))
    else:
        first = "first" if pos == 0 else f"#{pos + 1}"
        bits.append(f"{first} to misbehave at {_hhmmss(onset_us)} "
                    f"({f.count} signals, e.g. {f.example[:90]!r})")
        if f.anomaly:
            bits.append(f"anomaly score {f.anomaly:.2f}")
    origin, effect, familiar, new = [*inc.hints.get(n, []), 0, 0, 0, 0][:4]
    if familiar and not new:
        bits.append(f"its {familiar} signals repeat templates it showed before the incident began")
    if origin:
        bits.append(f"{origin} of its signals describe a failure of its own")
    elif effect:
        bits.append(f"its {effect} signals describe the failure of something it calls")
    if change is not None:
        delta = (onset_us - int(str(change[0]))) / _US
        when = f"{delta:.0f} s before" if delta >= 0 else f"{-delta:.0f} s after"
        bits.append(f"changed {when} its onset: {str(change[2])[:80]!r}")
    callers = sorted(c for c, cs in deps.items() if n in cs)
    if callers:
        bits.append("depended on by " + ", ".join(callers))
    bits.append(f"random-walk weight {walk:.2f}")
    return "; ".join(bits)
