"""Evidence that a signal belongs to an incident, each with a confidence, and the background test.

Pure.  A link is one reason (same service, shared trace id, call edge, a named service,
a shared entity token, the same template, a template that means the same — embeddings, see
:mod:`~.semantic` — or, for a service new to the incident, a symptom rate that moves with
one of the incident's services' at a lag of up to a minute — :mod:`~.lagrate`) with a
confidence; several reasons combine as a noisy-or.  :func:`surprise` is the Poisson tail of
a service's recent signal count against its own background rate: a stray error in a busy
service is not surprising.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from stream_processors.correlate.incident_state import RATE_LINK, IncidentState, subject_refs
from stream_processors.correlate.lagrate import FOLLOW_R, MIN_SIGNALS, co_movement
from stream_processors.correlate.semantic import SIMILAR_MIN, most_similar
from stream_processors.correlate.signals import Signal
from stream_processors.correlate.topology import Topology


class LinkKind(StrEnum):
    SAME_SERVICE = "same-service"
    TRACE = "trace"
    CALL = "call-graph"
    MENTION = "names-service"
    ENTITY = "shared-entity"
    TEMPLATE = "same-template"
    SIMILAR = "similar-template"
    RATE = RATE_LINK  # its symptom rate moves with one of the incident's services (lagged correlation)


CONFIDENCE = {
    LinkKind.TRACE: 0.95, LinkKind.SAME_SERVICE: 0.9, LinkKind.MENTION: 0.8, LinkKind.CALL: 0.7,
    LinkKind.ENTITY: 0.65, LinkKind.TEMPLATE: 0.45, LinkKind.SIMILAR: 0.35, LinkKind.RATE: 0.3,
}
RATE_SPAN_BINS = 90  # a join looks at the last 15 minutes of the two rates
_US = 1_000_000
STRONG = frozenset({LinkKind.TRACE, LinkKind.MENTION, LinkKind.SAME_SERVICE})
_SHARED_REF_PREFIXES = ("node=", "release=", "dbinstance=", "log_group=")


@dataclass(frozen=True)
class Link:
    incident: str
    kinds: tuple[LinkKind, ...]
    confidence: float
    via: str  # the incident's service the link reaches
    rate: tuple[float, int] | None = None  # (r, lag s) where the rates' co-movement is a reason

    @property
    def strong(self) -> bool:
        return any(k in STRONG for k in self.kinds)

    @property
    def specific(self) -> bool:
        """Whether the link names this incident in particular: a shared trace id, a named service, or
        an entity (a node, a release) both name."""
        return any(k in (LinkKind.TRACE, LinkKind.MENTION, LinkKind.ENTITY) for k in self.kinds)


def combine(confidences: list[float]) -> float:
    """Noisy-or of independent reasons."""
    miss = 1.0
    for c in confidences:
        miss *= 1.0 - c
    return 1.0 - miss


def link(sig: Signal, inc: IncidentState, topo: Topology, mentions: tuple[str, ...], trace_hit: bool,
         window_us: int, own_times: Callable[[], Sequence[int]] = tuple, need: float = 1.0) -> Link | None:
    """The link from ``sig`` to an open incident, or None when there is no reason or the signal lies
    more than ``window_us`` outside the incident's (or, for the same service, that service's) span of
    symptoms — before it too: a straggler ordered late is judged by its own time.

    ``own_times`` gives the recent symptom times of the signal's service (its own included), asked
    only for a service new to the incident whose other reasons stay below ``need`` (the join
    confidence): its rate moving with one of the incident's services' is one more reason."""
    if not inc.opened_us - window_us <= sig.ts_us <= inc.last_us + window_us:
        return None
    kinds: list[LinkKind] = []
    via = sig.service
    if trace_hit:
        kinds.append(LinkKind.TRACE)
    facts = inc.services.get(sig.service)
    near = facts is not None and facts.first_us - window_us <= sig.ts_us <= facts.last_us + window_us
    if facts is not None and facts.count and near:
        kinds.append(LinkKind.SAME_SERVICE)
    named = [m for m in mentions if m in inc.services or m in inc.mentions]
    if named or (sig.service in inc.mentions and sig.service not in inc.services):
        kinds.append(LinkKind.MENTION)
        via = named[0] if named else via
    # trouble flows from a dependency to its callers: a caller of the incident's services may be its
    # victim; a service they call failing on its own is a new problem, not an effect of theirs
    neighbours = [s for s in inc.services if s != sig.service and f"{sig.service}>{s}" in topo.calls]
    if neighbours:
        kinds.append(LinkKind.CALL)
        via = via if via != sig.service else neighbours[0]
    if any(r in inc.refs for r in subject_refs(sig) if r.startswith(_SHARED_REF_PREFIXES)):
        kinds.append(LinkKind.ENTITY)
    rate = None
    if sig.service not in inc.services and combine([CONFIDENCE[k] for k in kinds]) < need \
            and len(times := own_times()) >= MIN_SIGNALS:
        rate, via_rate = _co_moving(inc, times)
        if rate is not None:
            kinds.insert(0, LinkKind.RATE)  # first: the edge it makes rests on it (and can be cut)
            via = via_rate if via == sig.service else via
    if sig.template_id and sig.template_id in inc.templates:
        kinds.append(LinkKind.TEMPLATE)
    elif kinds and inc.shapes and most_similar(sig.extra.get("shape", ""), inc.shapes.values()) \
            >= SIMILAR_MIN:
        # another template that says the same thing (embeddings); alone it is below any join
        # confidence, so it is only looked for where another reason holds
        kinds.append(LinkKind.SIMILAR)
    if not kinds:
        return None
    confidences = [rate_confidence(rate[0]) if k is LinkKind.RATE and rate else CONFIDENCE[k] for k in kinds]
    return Link(inc.id, tuple(kinds), combine(confidences), via, rate)


def rate_confidence(r: float) -> float:
    """How much two rates moving together says, from their correlation: 0.3 at FOLLOW_R (0.7) to 0.38 at
    a perfect match — never enough to join alone (0.6), enough with the same template (0.45), not
    with a merely similar one (0.35).  Rates alone did join, in the simulated estates, only
    incidents that were not one: two faults that begin in the same minute move together by
    chance (sparse counts, the best of 13 lags), and their messages are often alike."""
    return round(0.3 + 0.08 * max(0.0, min(1.0, (r - FOLLOW_R) / (1.0 - FOLLOW_R))), 3)


def _co_moving(inc: IncidentState, own_times: Sequence[int]) -> tuple[tuple[float, int] | None, str]:
    """The incident's service whose symptom rate ``own_times`` moves with best, at ≥ FOLLOW_R."""
    best: tuple[float, int] | None = None
    via = ""
    for name in sorted(inc.services):
        found = co_movement(inc.symptom_times(name), own_times, span_bins=RATE_SPAN_BINS)
        if found is not None and found[0] >= FOLLOW_R and (best is None or found[0] > best[0]):
            best, via = (round(found[0], 3), found[1]), name
    return best, via


def surprise(count: int, rate_per_s: float, window_s: float) -> float:
    """P(N ≥ count) for N ~ Poisson(rate · window): small means the burst is not background."""
    mu = max(rate_per_s * window_s, 1e-12)
    if count <= 0:
        return 1.0
    term = math.exp(-mu)
    cdf = term
    for k in range(1, count):
        term *= mu / k
        cdf += term
    return max(0.0, 1.0 - cdf)


SCAN_FRACTIONS = (0.1, 0.2, 0.4)  # the shorter windows a burst is also tested in, as parts of the window


def scan(times: Sequence[int], at_us: int, rate_per_s: float, window_s: float) -> float:
    """The tail probability of the burst of ``times`` around ``at_us`` in the window that makes it
    most surprising: the whole ``window_s`` as is, and its shorter :data:`SCAN_FRACTIONS` (each
    count within ± that span of ``at_us``) with a Bonferroni factor for trying several.

    The windows adapt to the rate: in a busy service a short burst stands out in a short window
    where the whole window's background would drown it; in a quiet one the whole window decides."""
    best = surprise(sum(1 for t in times if abs(at_us - t) <= window_s * _US), rate_per_s, window_s)
    k = len(SCAN_FRACTIONS)
    for f in SCAN_FRACTIONS:
        span = window_s * f
        n = sum(1 for t in times if abs(at_us - t) <= span * _US)
        best = min(best, k * surprise(n, rate_per_s, span))
    return best
