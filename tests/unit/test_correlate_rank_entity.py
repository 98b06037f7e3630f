"""Root-cause ranking across a shared entity: the noisy neighbour, not the first service it throttled."""

from __future__ import annotations

from stream_processors.correlate import rank as ranking
from stream_processors.correlate.incident_state import IncidentState
from stream_processors.correlate.links import LinkKind
from stream_processors.correlate.signals import Signal, SignalKind
from stream_processors.correlate.topology import Topology

S = 1_000_000
T0 = 1_715_673_600 * S
NODE = "ip-10-0-1-17.eu-west-1.compute.internal"


def sym(i: str, t: float, service: str, summary: str, event_kind: str = "error", severity: int = 3) -> Signal:
    return Signal(id=i, kind=SignalKind.SYMPTOM, ts_us=T0 + int(t * S), service=service, source="kubernetes",
                  event_kind=event_kind, severity=severity, summary=summary, refs=(f"node={NODE}",))


def noisy_neighbour() -> IncidentState:
    """frontend is throttled first; then the node alert names shipping as its top consumer; the two
    met in one incident through the node both name (a shared-entity edge)."""
    inc = IncidentState("inc-1", T0, T0, T0)
    for s in (
        sym("t1", 0, "frontend", f"CPU throttling 66% for container frontend on node {NODE}"),
        sym("t2", 20, "frontend", f"CPU throttling 71% for container frontend on node {NODE}"),
        sym("a1", 80, "shipping", f"[FIRING:1] KubeNodeCPUSaturation {NODE}: top consumer shipping",
            event_kind="alert"),
        sym("t3", 95, "frontend", f"CPU throttling 80% for container frontend on node {NODE}"),
    ):
        inc.add(s, 200)
    inc.link("frontend", "shipping", LinkKind.ENTITY.value, 0.65)
    return inc


def test_a_service_suffering_on_a_node_depends_on_the_one_failing_there() -> None:
    inc = noisy_neighbour()
    assert inc.hints["frontend"][:2] == [0, 3] and inc.hints["shipping"][:2] == [1, 0]  # effects / origin
    names = sorted(inc.services)
    assert ranking.dependency_edges(inc, Topology(), names) == {"frontend": {"shipping"}, "shipping": set()}
    candidates = ranking.rank(inc, Topology(), {})
    assert [x.service for x in candidates] == ["shipping", "frontend"]  # not the first to misbehave
    assert "depended on by frontend" in candidates[0].reason
    del inc.links["frontend|shipping"]  # without the edge the first to misbehave would be blamed
    assert ranking.rank(inc, Topology(), {})[0].service == "frontend"


def test_two_services_on_one_node_failing_each_on_its_own_do_not_depend_on_each_other() -> None:
    inc = noisy_neighbour()
    inc.hints["frontend"] = [1, 0, 0, 0]  # frontend's own failure as well: no victim here
    edges = ranking.dependency_edges(inc, Topology(), sorted(inc.services))
    assert edges == {"frontend": set(), "shipping": set()}
