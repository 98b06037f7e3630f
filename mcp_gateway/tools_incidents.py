"""Incident tools: list, get, timeline, explain, similar.  Each is a small typed function whose
docstring is the description an MCP client shows; answers respect ``max_items`` and
``max_tokens`` (see :mod:`mcp_gateway.budget`).  Every tool first checks the store caught up.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from mcp_gateway.budget import fit, summarize
from mcp_gateway.context import GatewayContext
from mcp_gateway.errors import GatewayError, NotProduced
from mcp_gateway.events_log import EventLog, LoggedEvent
from mcp_gateway.store import InvalidCursor, encode_cursor
from mcp_gateway.views import (
    Candidate,
    EventRef,
    Explanation,
    IncidentBrief,
    IncidentDetail,
    IncidentPage,
    SimilarIncident,
    SimilarIncidents,
    Timeline,
    ref_of_evidence,
    ref_of_logged,
)
from schemas.models import Incident, IncidentStatus, Severity, utc
from stream_processors.embed import Embedder

MaxItems = Annotated[int, Field(ge=1, le=200, description="Most items in the answer; the rest are counted.")]
MaxTokens = Annotated[
    int | None, Field(ge=200, le=20_000, description="Approximate answer size in tokens (chars/4).")
]
IncidentId = Annotated[str, Field(min_length=1, max_length=256)]
CHANGE_KINDS = {"deploy", "annotation"}
LEAD_IN = timedelta(minutes=30)
_RANK = {s.value: s.rank for s in Severity}


def _telling(e: EventRef) -> tuple[int, float, str]:
    # most severe first, then newest
    return (-_RANK.get(e.severity, 0), -e.timestamp.timestamp(), e.event_id)


def _group(e: EventRef) -> str:
    return e.template or e.kind


def is_change(e: LoggedEvent) -> bool:
    """A deploy, release or config change (what ``what_changed`` and ``explain`` look for)."""
    text = f"{e.message} {e.template or ''}".lower()
    return e.kind in CHANGE_KINDS or any(w in text for w in ("deploy", "release", "rollout", "config"))


def _incident(ctx: GatewayContext, incident_id: str) -> Incident:
    inc = ctx.store.get(incident_id)
    if inc is None:
        raise GatewayError(f"no incident with id {incident_id!r}; list_incidents shows the known ids")
    return inc


def _evidence_refs(ctx: GatewayContext, inc: Incident) -> list[EventRef]:
    logged = ctx.events.by_ids(e.event_id for e in inc.evidence) if ctx.events is not None else {}
    return [ref_of_evidence(ev, logged.get(ev.event_id), ctx.links) for ev in inc.evidence]


def detail(ctx: GatewayContext, incident_id: str, max_items: int, max_tokens: int) -> IncidentDetail:
    """An incident with its most telling evidence within the budget (get_incident, incident://)."""
    inc = _incident(ctx, incident_id)
    refs = sorted(_evidence_refs(ctx, inc), key=_telling)
    fb = ctx.feedback.verdict(inc.id) if ctx.feedback is not None else None

    def build(k: int) -> IncidentDetail:
        return IncidentDetail(
            id=inc.id,
            revision=inc.revision,
            status=inc.status.value,
            title=inc.title,
            severity=inc.severity.value,
            opened_at=inc.opened_at,
            updated_at=inc.updated_at,
            resolved_at=inc.resolved_at,
            services=inc.services,
            sources=inc.sources,
            root_cause_candidates=inc.root_cause_candidates,
            label=inc.label,
            remediation=inc.remediation,
            event_count=inc.event_count,
            evidence=refs[:k],
            evidence_summary=summarize(len(refs), k, (r.service for r in refs), (_group(r) for r in refs)),
            feedback=fb.outcome.value if fb is not None else None,
            summary=inc.summary, detected_at=inc.detected_at, merged_into=inc.merged_into,
            merged_from=inc.merged_from, reopened=inc.reopened, label_quality=inc.label_quality,
            split_from=inc.split_from, split_into=inc.split_into,
            graph_nodes=inc.graph_nodes, graph_edges=inc.graph_edges,
            remediation_suggestions=inc.remediation_suggestions,
        )

    return fit(build, min(max_items, len(refs)), max_tokens)


def register_incident_tools(server: MCPServer, ctx: GatewayContext) -> None:
    """Add list_incidents, get_incident, incident_timeline, explain_incident, similar_incidents."""
    profiles = ProfileVectors()

    def budget(max_tokens: int | None) -> int:
        return max_tokens or ctx.token_budget

    @server.tool(structured_output=True)
    async def list_incidents(
        status: Literal["open", "resolved"] | None = None,
        service: str | None = None,
        since: datetime | None = None,
        max_items: MaxItems = 50,
        max_tokens: MaxTokens = None,
        cursor: str | None = None,
    ) -> IncidentPage:
        """List incidents, newest update first, with counts per service over every match.

        Filters: `status` (open or resolved), `service` (incidents that involve it),
        `since` (RFC 3339; updated at or after it). Paginate with `cursor` (next_cursor).
        """
        ctx.ready()
        try:
            page = ctx.store.query(
                status=IncidentStatus(status) if status else None,
                service=service,
                since=utc(since) if since else None,
                limit=max_items,
                cursor=cursor,
            )
            every = ctx.store.query(
                status=IncidentStatus(status) if status else None,
                service=service,
                since=utc(since) if since else None,
                limit=100_000,
            ).incidents
        except (InvalidCursor, ValueError) as exc:
            raise GatewayError(str(exc)) from exc
        summary_of = summarize(
            len(every),
            0,
            (s for i in every for s in i.services),
            (f"{i.status.value}/{i.severity.value}" for i in every),
        )

        def build(k: int) -> IncidentPage:
            kept = page.incidents[:k]
            more = k < len(page.incidents) or page.next_cursor is not None
            nxt = encode_cursor(kept[-1]) if kept and more else (page.next_cursor if not kept else None)
            return IncidentPage(
                incidents=[IncidentBrief.of(i) for i in kept],
                next_cursor=nxt,
                total=page.total,
                summary=summary_of.model_copy(update={"returned": k, "omitted": page.total - k}),
            )

        return fit(build, len(page.incidents), budget(max_tokens))

    @server.tool(structured_output=True)
    async def get_incident(
        id: IncidentId, max_items: MaxItems = 30, max_tokens: MaxTokens = None
    ) -> IncidentDetail:
        """Get one incident by id: status, severity, services, sources, the ranked root-cause
        candidates and its evidence (most severe first; counts per service and template of all of it)."""
        ctx.ready()
        return detail(ctx, id, max_items, budget(max_tokens))

    @server.tool(structured_output=True)
    def incident_timeline(
        incident_id: str | None = None,
        service: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        max_items: MaxItems = 50,
        max_tokens: MaxTokens = None,
    ) -> Timeline:
        """One time-aligned timeline across sources, for an incident (`incident_id`: its evidence
        plus its services' recent events from 30 min before it opened) or a `service` (its recent
        events; `since`/`until` RFC 3339). When too long, the most severe entries and every
        deploy/change are kept, in time order, and the rest counted per service and template."""
        ctx.ready()
        if (incident_id is None) == (service is None):
            raise GatewayError("give exactly one of incident_id or service")
        log = ctx.event_log()
        lo = utc(since) if since else None
        hi = utc(until) if until else None
        own: set[str] = set()
        if incident_id is not None:
            inc = _incident(ctx, incident_id)
            own = {e.event_id for e in inc.evidence}
            lo = lo or inc.opened_at - LEAD_IN
            hi = hi or (inc.resolved_at or inc.updated_at) + timedelta(minutes=5)
            services = set(inc.services)
            refs = {r.event_id: r for r in _evidence_refs(ctx, inc)}
            scope = f"incident {inc.id}"
        else:
            services, refs, scope = {service or ""}, {}, f"service {service}"
        for e in log.query(services=services, since=lo, until=hi):
            refs[e.id] = ref_of_logged(e, ctx.links)
        entries = sorted(refs.values(), key=lambda r: (r.timestamp, r.event_id))
        if not entries and incident_id is None and not log.query(services=services):
            raise GatewayError(f"no recent event of service {service!r} (window starts {log.window_start()})")
        priority = sorted(
            entries, key=lambda r: (r.event_id not in own, r.kind not in CHANGE_KINDS, *_telling(r))
        )

        def build(k: int) -> Timeline:
            keep = {r.event_id for r in priority[:k]}
            chosen = [r for r in entries if r.event_id in keep]
            return Timeline(
                scope=scope,
                start=lo,
                end=hi,
                entries=chosen,
                in_incident=[r.event_id for r in chosen if r.event_id in own],
                summary=summarize(
                    len(entries), k, (r.service for r in entries), (_group(r) for r in entries)
                ),
            )

        return fit(build, min(max_items, len(entries)), budget(max_tokens))

    @server.tool(structured_output=True)
    def explain_incident(
        id: IncidentId, max_candidates: Annotated[int, Field(ge=1, le=10)] = 3, max_tokens: MaxTokens = None
    ) -> Explanation:
        """Why an incident happened: its ranked root-cause candidates, each with its reason, its
        own evidence (event ids, topic/partition/offset, deep links into the source UIs when
        configured) and the deploys/releases/config changes of that service shortly before."""
        ctx.ready()
        inc = _incident(ctx, id)
        refs = sorted(_evidence_refs(ctx, inc), key=_telling)
        changes: list[LoggedEvent] = []
        if ctx.events is not None and ctx.events.caught_up.is_set():
            changes = [
                e
                for e in ctx.events.query(
                    services=set(inc.services), since=inc.opened_at - LEAD_IN, until=inc.updated_at
                )
                if is_change(e)
            ]
        note = (
            "Candidates are ranked by the correlator (temporal, semantic and topology evidence); "
            "a change shortly before the incident on the top candidate is the usual suspect."
        )
        if not inc.root_cause_candidates:
            note = "The correlator ranked no candidate for this incident yet; its evidence is below."

        def build(k: int) -> Explanation:
            cands = [
                Candidate(
                    rank=n + 1,
                    service=c.service,
                    score=c.score,
                    reason=c.reason,
                    evidence=[r for r in refs if r.service == c.service][:k],
                    changes_before=[ref_of_logged(e, ctx.links) for e in changes if e.service == c.service][
                        -k:
                    ],
                )
                for n, c in enumerate(inc.root_cause_candidates[:max_candidates])
            ]
            return Explanation(incident_id=inc.id, title=inc.title, candidates=cands, note=note)

        return fit(build, 5, budget(max_tokens))

    @server.tool(structured_output=True)
    def similar_incidents(
        id: IncidentId, max_items: Annotated[int, Field(ge=1, le=20)] = 5
    ) -> SimilarIncidents:
        """Past incidents most like this one, by the embedding of their titles and evidence
        templates (cosine, 1 = same); use their outcomes and remediations as hints."""
        ctx.ready()
        if ctx.embedder is None:
            raise NotProduced(
                "similar_incidents needs template embeddings, which are off on this "
                "gateway (SEISMO_EMBEDDER=off): set SEISMO_EMBEDDER=minilm or hash"
            )
        inc = _incident(ctx, id)
        others = [o for o in ctx.store.all() if o.id != inc.id]
        if not others:
            return SimilarIncidents(incident_id=inc.id, similar=[], compared=0)
        logged = ctx.events
        vectors = profiles.vectors(ctx.embedder, [inc, *others], logged)
        scores = vectors[1:] @ vectors[0]
        order = sorted(range(len(others)), key=lambda i: (-float(scores[i]), others[i].id))[:max_items]
        return SimilarIncidents(
            incident_id=inc.id,
            compared=len(others),
            similar=[
                SimilarIncident(score=round(float(scores[i]), 4), incident=IncidentBrief.of(others[i]))
                for i in order
            ],
        )


class ProfileVectors:
    """Embeddings of incident profiles, kept per (id, revision): an incident is embedded again only
    when it changed.  Bounded (oldest first out); thread-safe."""

    def __init__(self, size: int = 20_000) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._vectors: OrderedDict[tuple[str, int], Any] = OrderedDict()

    def vectors(self, embedder: Embedder, incidents: list[Incident], log: EventLog | None) -> Any:
        import numpy as np

        keys = [(i.id, i.revision) for i in incidents]
        with self._lock:
            missing = [n for n, k in enumerate(keys) if k not in self._vectors]
        if missing:
            got = embedder.embed([_profile(incidents[n], log) for n in missing])
            with self._lock:
                for row, n in enumerate(missing):
                    self._vectors[keys[n]] = got[row]
                while len(self._vectors) > self.size:
                    self._vectors.popitem(last=False)
        with self._lock:
            fallback = np.zeros(embedder.dim, dtype=np.float32)
            return np.stack([self._vectors.get(k, fallback) for k in keys])


def _profile(inc: Incident, log: EventLog | None) -> str:
    """What an incident is about, as text to embed: its title, label and evidence templates."""
    templates: list[str] = []
    if log is not None:
        found = log.by_ids(e.event_id for e in inc.evidence)
        templates = sorted({e.template or e.message for e in found.values()})[:20]
    if not templates:
        templates = sorted({e.summary for e in inc.evidence if e.summary})[:20]
    return " | ".join([inc.title, inc.label or "", *templates])
