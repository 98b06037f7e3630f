"""Behaviour of the synthetic scenario generator behind ``seismo simulate``."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from functools import cache
from itertools import combinations
from pathlib import Path

import pytest

from producers.ingest import parse_line
from producers.simulate import GroundTruth, simulate, write_simulation
from producers.simulate_faults import FaultKind
from schemas.models import Event
from stream_processors.correlate.logic import CorrelateConfig, ServiceState, apply

START = datetime(2024, 5, 14, 8, 0, tzinfo=UTC)


@cache
def _run(services: int = 8, incidents: int = 7, seed: int = 11) -> tuple[list[Event], GroundTruth]:
    return simulate(services, incidents, seed, START, timedelta(hours=3))


def _write(tmp: Path, seed: int) -> tuple[bytes, bytes]:
    events, truth = simulate(6, 4, seed, START, timedelta(hours=1))
    write_simulation(events, truth, tmp / "events.jsonl", tmp / "truth.json")
    return (tmp / "events.jsonl").read_bytes(), (tmp / "truth.json").read_bytes()


def test_the_same_seed_writes_byte_identical_files(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert _write(tmp_path / "a", 5) == _write(tmp_path / "b", 5)


def test_another_seed_writes_different_events(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert _write(tmp_path / "a", 5)[0] != _write(tmp_path / "b", 6)[0]


def test_every_written_line_is_a_valid_event_with_a_unique_id(tmp_path: Path) -> None:
    events_bytes, _ = _write(tmp_path, 3)
    lines = events_bytes.decode().splitlines()
    parsed = [parse_line(line) for line in lines]
    assert len({e.id for e in parsed}) == len(parsed) > 1000
    assert [e.timestamp for e in parsed] == sorted(e.timestamp for e in parsed)


def test_truth_names_kind_root_cause_affected_onset_and_existing_event_ids(tmp_path: Path) -> None:
    events, truth = _run()
    ids = {e.id for e in events}
    doc = json.loads(json.dumps(truth.to_json()))
    assert len(doc["incidents"]) == 7
    for incident in doc["incidents"].values():
        assert FaultKind(incident["kind"])
        assert incident["root_cause"] in doc["services"]
        assert incident["root_cause"] in incident["affected"]
        assert set(incident["event_ids"]) <= ids
        assert datetime.fromisoformat(incident["onset"]) < datetime.fromisoformat(incident["end"])


def test_every_fault_kind_is_injected_when_there_are_five_incidents_or_more() -> None:
    _, truth = _run()
    assert {i.kind for i in truth.incidents} == set(FaultKind)


def test_each_incident_touches_two_to_four_sources() -> None:
    events, truth = _run()
    by_id = {e.id: e for e in events}
    for incident in truth.incidents:
        sources = {by_id[i].source.value for i in incident.event_ids}
        assert 2 <= len(sources) <= 4, (incident.id, sources)
        assert sources == set(incident.sources)
        assert "synthetic" not in sources


def test_some_incidents_overlap_in_time() -> None:
    _, truth = _run()
    overlapping = [
        (a.id, b.id) for a, b in combinations(truth.incidents, 2) if a.onset < b.end and b.onset < a.end
    ]
    assert overlapping


def test_background_errors_are_sparse() -> None:
    events, truth = _run()
    injected = {i for incident in truth.incidents for i in incident.event_ids}
    background = [e for e in events if e.id not in injected]
    anomalous = [e for e in background if e.is_anomalous]
    assert len(anomalous) < len(background) / 500
    assert any(e.severity.value == "warning" for e in background)


def test_metrics_follow_a_daily_curve_with_noise() -> None:
    events, _ = simulate(3, 0, 1, START, timedelta(hours=12))
    series = [e.metric.value for e in events
              if e.metric is not None and e.service == "frontend" and e.metric.name == "request_rate"]
    assert len(series) == 12 * 60
    morning, afternoon = series[:60], series[6 * 60:7 * 60]
    assert sum(afternoon) / 60 > 1.2 * sum(morning) / 60
    assert len(set(morning)) > 50


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_the_correlator_opens_an_incident_holding_events_of_every_injected_fault(seed: int) -> None:
    events, truth = _run(seed=seed)
    states: dict[str, ServiceState] = {}
    members: dict[str, set[str]] = defaultdict(set)
    cfg = CorrelateConfig()
    for event in events:
        state = states.get(event.service) or ServiceState(event.service)
        states[event.service], published = apply(state, event, cfg)
        for incident in published:
            members[incident.id] |= {ref.event_id for ref in incident.evidence}
    for injected in truth.incidents:
        assert any(set(injected.event_ids) & found for found in members.values()), injected.id


@pytest.mark.parametrize(("services", "incidents"), [(1, 1), (2, 5), (25, 3)])
def test_tiny_and_large_estates_still_produce_every_incident(services: int, incidents: int) -> None:
    events, truth = simulate(services, incidents, 9, START, timedelta(hours=1))
    ids = {e.id for e in events}
    assert len(truth.incidents) == incidents
    assert all(set(i.event_ids) <= ids and len(i.sources) >= 2 for i in truth.incidents)
    assert len(set(truth.world.services)) == services


def test_impossible_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one service"):
        simulate(0, 1, 1, START, timedelta(hours=1))
    with pytest.raises(ValueError, match="UTC offset"):
        simulate(2, 1, 1, datetime(2024, 1, 1), timedelta(hours=1))
    with pytest.raises(ValueError, match="duration"):
        simulate(2, 1, 1, START, timedelta(minutes=5))
