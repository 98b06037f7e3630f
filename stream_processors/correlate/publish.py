"""An :class:`IncidentState` as the published :class:`~schemas.models.Incident`.

Pure; called once per touched incident at the end of a batch, so ranking, labelling and
remediation run once per batch, not once per signal.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from schemas.models import (
    EvidenceRef,
    GraphEdge,
    GraphNode,
    Incident,
    IncidentStatus,
    RootCauseCandidate,
    Severity,
)
from stream_processors.correlate.correlator import Correlator
from stream_processors.correlate.incident_state import IncidentState
from stream_processors.correlate.label import dominant_template, fallback
from stream_processors.correlate.llm import LlmLabeler
from stream_processors.correlate.rank import dependency_edges, rank
from stream_processors.correlate.remediation import suggest

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SEVERITIES = list(Severity)


def _dt(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def severity(inc: IncidentState) -> Severity:
    """The worst signal, raised by the blast radius (services and sources touched)."""
    worst = max((f.severity for f in inc.services.values()), default=2)
    sources = {s for f in inc.services.values() for s in f.sources}
    if len(inc.services) >= 4 or (len(inc.services) >= 3 and len(sources) >= 3):
        worst = max(worst, 4)
    elif len(inc.services) >= 2:
        worst = max(worst, 3)
    return _SEVERITIES[min(max(worst, 2), 4)]


def fingerprint(root: str, inc: IncidentState) -> str:
    template = dominant_template(inc)
    return hashlib.sha1(f"{root}\x00{template}".encode(), usedforsecurity=False).hexdigest()[:16]


def build(state: IncidentState, c: Correlator, labeler: LlmLabeler | None = None,
          outcomes: Mapping[str, tuple[int, int]] | None = None) -> Incident:
    """The published incident; ``labeler`` (optional) may replace the deterministic label;
    ``outcomes`` (:meth:`~.outcomes.Outcomes.tally`) gives the remediations' recorded success."""
    inc = c.view(state)
    candidates = rank(inc, c.topo, c.changes)
    label = fallback(inc, candidates)
    root = candidates[0].service if candidates else ""
    fp = fingerprint(root, inc)
    if labeler is not None and root and not inc.merged_into:
        facts = [f"{r[4]}: {r[6]}" for r in inc.evidence if not str(r[3]).startswith("anomaly")][:12]
        label = labeler.label(fp, root, dominant_template(inc), sorted(inc.services), facts, label)
    remediation = suggest(inc, root, outcomes, fp) if root else []
    names = sorted(set(inc.services) | {x.service for x in candidates})
    weights = {x.service: x.score for x in candidates}
    nodes = [GraphNode(id=n, kind="service", service=n, weight=round(weights.get(n, 0.0), 4)) for n in names]
    edges = [GraphEdge(source=k.split("|")[0], target=k.split("|")[1], kind=str(v[0]), confidence=float(v[1]))
             for k, v in sorted(inc.links.items())]
    for caller, callees in sorted(dependency_edges(inc, c.topo, names).items()):
        edges.extend(GraphEdge(source=caller, target=callee, kind="depends-on", confidence=1.0)
                     for callee in sorted(callees))
    return Incident(
        id=inc.id, revision=inc.changes,
        status=IncidentStatus.OPEN if inc.is_open else IncidentStatus.RESOLVED,
        title=label.title, severity=severity(inc), opened_at=_dt(inc.opened_us), updated_at=_dt(inc.last_us),
        resolved_at=_dt(inc.resolved_us) if not inc.is_open and inc.resolved_us else None,
        services=sorted(inc.services),
        sources=sorted({s for f in inc.services.values() for s in f.sources}),
        root_cause_candidates=[RootCauseCandidate(service=x.service, score=x.score, reason=x.reason)
                               for x in candidates],
        evidence=[EvidenceRef(event_id=str(r[1]), source=str(r[2]), kind=str(r[3]), timestamp=_dt(int(r[0])),
                              service=str(r[4]), severity=_SEVERITIES[int(r[5])].value, summary=str(r[6]))
                  for r in inc.evidence],
        label=label.title, remediation=[f"[{r.risk}] {r.command}" for r in remediation],
        event_count=inc.count, summary=label.summary, detected_at=_dt(inc.detected_us), fingerprint=fp,
        merged_from=list(inc.merged_from), merged_into=inc.merged_into or None, reopened=inc.reopened,
        label_quality=label.quality, graph_nodes=nodes, graph_edges=edges,
        split_from=inc.split_from or None, split_into=list(inc.split_into),
        remediation_suggestions=remediation,
    )
