from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from schemas.models import Event, Incident, IncidentStatus
from stream_processors.correlate.logic import CorrelateConfig, ServiceState, apply
from stream_processors.exceptions import InvalidEvent

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
CFG = CorrelateConfig(window_s=300, quiet_s=600, max_evidence=50, max_remembered_ids=100)


def ev(i: str, minutes: float, severity: str = "error", kind: str = "log", service: str = "api") -> Event:
    return Event(
        id=i,
        source="kubernetes",
        kind=kind,
        timestamp=T0 + timedelta(minutes=minutes),
        service=service,
        severity=severity,
        message=f"message {i}",
    )


def fold(events: list[Event], cfg: CorrelateConfig = CFG) -> tuple[ServiceState, dict[str, Incident]]:
    state = ServiceState("api")
    latest: dict[str, Incident] = {}
    for e in events:
        state, out = apply(state, e, cfg)
        state = ServiceState.from_json(state.to_json())  # as the Faust table stores it
        for inc in out:
            assert inc.revision > latest[inc.id].revision if inc.id in latest else inc.revision == 1
            latest[inc.id] = inc
    return state, latest


def test_normal_events_open_no_incident() -> None:
    state, incidents = fold([ev("a", 0, "info"), ev("b", 1, "warning")])
    assert incidents == {} and state.current is None


def test_errors_close_in_time_join_one_incident_with_their_evidence() -> None:
    _, incidents = fold([ev("a", 0), ev("b", 2), ev("n", 3, "info"), ev("c", 4, "critical")])
    (inc,) = incidents.values()
    assert inc.status is IncidentStatus.OPEN
    assert [e.event_id for e in inc.evidence] == ["a", "b", "c"]
    assert inc.severity.value == "critical" and inc.event_count == 3
    assert inc.root_cause_candidates[0].service == "api"
    assert inc.opened_at == T0 and inc.updated_at == T0 + timedelta(minutes=4)


def test_alert_and_error_kinds_are_anomalous_even_at_info_severity() -> None:
    _, incidents = fold([ev("a", 0, "info", kind="alert"), ev("b", 1, "info", kind="error")])
    assert [e.event_id for e in next(iter(incidents.values())).evidence] == ["a", "b"]


def test_a_gap_longer_than_the_window_resolves_the_incident_and_opens_another() -> None:
    _, incidents = fold([ev("a", 0), ev("b", 1), ev("c", 7)])
    first, second = sorted(incidents.values(), key=lambda i: i.opened_at)
    assert first.status is IncidentStatus.RESOLVED
    assert [e.event_id for e in first.evidence] == ["a", "b"]
    assert [e.event_id for e in second.evidence] == ["c"] and second.status is IncidentStatus.OPEN


def test_quiet_event_time_resolves_an_open_incident() -> None:
    state, incidents = fold([ev("a", 0), ev("n1", 5, "info"), ev("n2", 11, "info")])
    (inc,) = incidents.values()
    assert inc.status is IncidentStatus.RESOLVED
    assert inc.resolved_at == T0 + timedelta(minutes=10)
    assert state.current is None


def test_redelivered_events_change_nothing() -> None:
    events = [ev("a", 0), ev("b", 1), ev("n", 2, "info"), ev("c", 3)]
    state, once = fold(events)
    for e in events:
        state2, out = apply(state, e, CFG)
        assert out == [] or all(o.id in once for o in out)
        assert state2.current == state.current


def test_a_replay_with_duplicates_yields_the_same_incidents_as_a_clean_run() -> None:
    rng = random.Random(3)
    events = [ev(f"e{i}", i * 0.7, rng.choice(["info", "info", "error"])) for i in range(200)]
    _, clean = fold(events)
    # at-least-once: a crash re-delivers a suffix of what was already processed
    replayed = events[:120] + events[80:]
    _, dirty = fold(replayed)
    assert clean == dirty


def test_evidence_is_capped_but_every_event_is_counted() -> None:
    cfg = CorrelateConfig(window_s=300, quiet_s=600, max_evidence=3)
    _, incidents = fold([ev(f"e{i}", i * 0.1) for i in range(10)], cfg)
    (inc,) = incidents.values()
    assert len(inc.evidence) == 3 and inc.event_count == 10


def test_an_anomaly_older_than_the_dedup_horizon_is_rejected_as_too_late() -> None:
    cfg = CorrelateConfig(window_s=300, quiet_s=600, max_remembered_ids=2)
    state, _ = fold([ev("a", 10), ev("b", 11), ev("c", 12)], cfg)
    with pytest.raises(InvalidEvent, match="older than the dedup horizon") as info:
        apply(state, ev("old", 0), cfg)
    assert info.value.error_type == "too_late"


def test_incident_ids_are_deterministic() -> None:
    _, a = fold([ev("a", 0), ev("b", 1)])
    _, b = fold([ev("a", 0), ev("b", 1)])
    assert a.keys() == b.keys()
