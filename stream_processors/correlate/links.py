"""Evidence that a signal belongs to an incident, each with a confidence, and the background test.

Pure.  A link is one reason (same service, shared trace id, call edge, a named service,
a shared entity token, the same template, a template that means the same — embeddings, see
:mod:`~.semantic`) with a confidence; several reasons combine
as a noisy-or.  :func:`surprise` is the Poisson tail of a service's recent signal count
against its own background rate: a stray error in a busy service is not surprising.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from stream_processors.correlate.incident_state import IncidentState, subject_refs
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


CONFIDENCE = {
    LinkKind.TRACE: 0.95, LinkKind.SAME_SERVICE: 0.9, LinkKind.MENTION: 0.8, LinkKind.CALL: 0.7,
    LinkKind.ENTITY: 0.65, LinkKind.TEMPLATE: 0.45, LinkKind.SIMILAR: 0.35,
}
STRONG = frozenset({LinkKind.TRACE, LinkKind.MENTION, LinkKind.SAME_SERVICE})
_SHARED_REF_PREFIXES = ("node=", "release=", "dbinstance=", "log_group=")


@dataclass(frozen=True)
class Link:
    incident: str
    kinds: tuple[LinkKind, ...]
    confidence: float
    via: str  # the incident's service the link reaches

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
         window_us: int) -> Link | None:
    """The link from ``sig`` to an open incident, or None when there is no reason or the signal lies
    more than ``window_us`` outside the incident's (or, for the same service, that service's) span of
    symptoms — before it too: a straggler ordered late is judged by its own time."""
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
    if sig.template_id and sig.template_id in inc.templates:
        kinds.append(LinkKind.TEMPLATE)
    elif kinds and inc.shapes and most_similar(sig.extra.get("shape", ""), inc.shapes.values()) \
            >= SIMILAR_MIN:
        # another template that says the same thing (embeddings); alone it is below any join
        # confidence, so it is only looked for where another reason holds
        kinds.append(LinkKind.SIMILAR)
    if not kinds:
        return None
    return Link(inc.id, tuple(kinds), combine([CONFIDENCE[k] for k in kinds]), via)


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
