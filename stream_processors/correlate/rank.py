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
  the dependency that causes it, so the walk pools at the root;
* **lead and lag** — a Granger-style lag test between every two services' symptom rates
  (:func:`lead_lag`): when A's past counts predict B's better than B's past predict A's,
  A leads B (the cause's errors rise first and the callers' follow).

The score is a weighted sum; every candidate's ``reason`` names the signals, times and
edges behind it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from stream_processors.correlate.incident_state import IncidentState
from stream_processors.correlate.lagrate import best_lag
from stream_processors.correlate.links import LinkKind
from stream_processors.correlate.topology import Topology

_US = 1_000_000
WEIGHTS = {"walk": 0.35, "onset": 0.3, "change": 0.15, "origin": 0.2, "novel": 0.2, "lead": 0.0}
LAG_BIN_S = 10.0  # symptom counts per 10 s of event time
LAG_MAX_BINS = 6  # lags of up to a minute
LAG_SPAN_BINS = 180  # the first 30 minutes of the incident's evidence
LAG_MIN_SIGNALS = 4  # a service with fewer symptoms in the evidence is not tested ...
LAG_MIN_BINS = 3  # ... nor one whose symptoms fill fewer bins (one burst is no rate)
LAG_MARGIN = 0.2  # how much better one direction must predict than the other
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
    for key, value in inc.links.items():  # two services on one entity (a node): the sufferer depends
        if value[0] != LinkKind.ENTITY:   # on the one whose own failure is there (a noisy neighbour)
            continue
        a, b = key.split("|", 1)
        for victim, culprit in ((a, b), (b, a)):
            if victim in inside and culprit in inside and _suffers(inc, victim) and _fails(inc, culprit):
                deps[victim].add(culprit)
    return deps


def _suffers(inc: IncidentState, service: str) -> bool:
    """Its symptoms all describe the failure of something else (throttled, upstream timeouts)."""
    origin, effect, _, _ = inc.said(service)
    return effect > 0 and origin == 0


def _fails(inc: IncidentState, service: str) -> bool:
    """Some of its symptoms describe a failure of its own (exhausted, OOMKilled, saturated)."""
    return inc.said(service)[0] > 0


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


def lead_lag(inc: IncidentState) -> dict[str, list[tuple[str, int, float]]]:
    """service → the services it leads: ``(other, lag in seconds, margin)``.

    A Granger-style lag test on the symptom rows of the incident's evidence (anomaly and deploy
    rows aside), binned per :data:`LAG_BIN_S` over the first :data:`LAG_SPAN_BINS` bins: A leads B
    when A's counts shifted later correlate with B's better, by :data:`LAG_MARGIN`, than B's
    shifted later correlate with A's.  Services with fewer than :data:`LAG_MIN_SIGNALS` rows, or
    rows in fewer than :data:`LAG_MIN_BINS` bins, are not tested (too few to tell a rate)."""
    rows = [r for r in inc.evidence if not str(r[3]).startswith(("anomaly", "deploy"))]
    if not rows:
        return {}
    start = min(int(r[0]) for r in rows)
    width = int(LAG_BIN_S * _US)
    series: dict[str, list[float]] = {}
    for r in rows:
        slot = (int(r[0]) - start) // width
        if slot < LAG_SPAN_BINS:
            series.setdefault(str(r[4]), [0.0] * LAG_SPAN_BINS)[slot] += 1.0
    tested = sorted(s for s, xs in series.items()
                    if sum(xs) >= LAG_MIN_SIGNALS and sum(1 for x in xs if x) >= LAG_MIN_BINS)
    if len(tested) < 2:
        return {}
    last = max(max(i for i, v in enumerate(series[s]) if v) for s in tested)
    span = max(last + 1 + LAG_MAX_BINS, 2 * LAG_MAX_BINS + 3)
    leads: dict[str, list[tuple[str, int, float]]] = {}
    for i, a in enumerate(tested):
        for b in tested[i + 1:]:
            xa, xb = series[a][:span], series[b][:span]
            ab, lag_ab = best_lag(xa, xb, LAG_MAX_BINS)
            ba, lag_ba = best_lag(xb, xa, LAG_MAX_BINS)
            if ab - ba >= LAG_MARGIN:
                leads.setdefault(a, []).append((b, int(lag_ab * LAG_BIN_S), round(ab - ba, 2)))
            elif ba - ab >= LAG_MARGIN:
                leads.setdefault(b, []).append((a, int(lag_ba * LAG_BIN_S), round(ba - ab, 2)))
    return leads


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
    leads = lead_lag(inc) if WEIGHTS["lead"] else {}
    peers = max(1, len(names) - 1)
    out = []
    for n in names:
        pos = order.index(n)
        origin, effect, familiar, new = inc.said(n)
        said = 1.0 if origin else (-0.5 if effect else 0.0)
        novel = -1.0 if familiar and not new else 0.0  # only symptoms it showed before: a standing problem
        lead = (len(leads.get(n, [])) - sum(1 for f in leads.values() for b, _, _ in f if b == n)) / peers
        parts = {"walk": walk[n] / top, "onset": 1.0 / (1 + pos), "change": 1.0 if n in changed else 0.0,
                 "origin": said, "novel": novel, "lead": lead}
        score = sum(WEIGHTS[k] * v for k, v in parts.items())
        reason = _reason(inc, n, pos, onset[n], changed.get(n), deps, walk[n], leads.get(n, []))
        out.append(Candidate(n, round(score, 4), reason))
    out.sort(key=lambda c: (-c.score, c.service))
    return out[:5]


def _reason(inc: IncidentState, n: str, pos: int, onset_us: int, change: list[object] | None,
            deps: dict[str, set[str]], walk: float, leads: list[tuple[str, int, float]]) -> str:
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
    origin, effect, familiar, new = inc.said(n)
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
    if leads:
        led = ", ".join(f"{b} by {lag} s" for b, lag, _ in sorted(leads)[:3])
        bits.append(f"its symptom rate leads {led} (lag test)")
    bits.append(f"random-walk weight {walk:.2f}")
    return "; ".join(bits)
