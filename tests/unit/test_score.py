from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

from schemas.codec import codec_for
from schemas.models import Anomaly, Event
from stream_processors.score.scorer import ScoreConfig, Scorer, ServiceScore

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def metric(i: int, value: float, service: str = "api") -> Event:
    return Event(
        id=f"m-{i}", source="cloudwatch", kind="metric", timestamp=T0 + timedelta(seconds=30 * i),
        service=service, severity="info", message="latency",
        metric={"name": "latency_ms", "value": value, "unit": "ms"},
    )


def log(
    i: str, at: timedelta, template: str = "t-get", severity: str = "info", novelty: float = 0.1
) -> Event:
    return Event(
        id=i, source="kubernetes", kind="log", timestamp=T0 + at, service="api", severity=severity,
        message=f"GET /x {i}", template_id=template, template=f"{template} <PATH>", novelty=novelty,
    )


def stable_metrics(n: int, spike_at: int | None = None, seed: int = 3) -> list[Event]:
    rng = random.Random(seed)
    return [metric(i, 400.0 if i == spike_at else 100 + rng.gauss(0, 3)) for i in range(n)]


def steady_logs(minutes: int, per_minute: int = 4, burst_minute: int | None = None) -> list[Event]:
    out = []
    for m in range(minutes):
        k = 40 if m == burst_minute else per_minute
        out += [log(f"l-{m}-{j}", timedelta(minutes=m, seconds=j)) for j in range(k)]
    return out


def fold(events: list[Event], scorer: Scorer | None = None, roundtrip: bool = False) -> list[Anomaly]:
    scorer = scorer or Scorer()
    state = scorer.new_state("api")
    out: list[Anomaly] = []
    for e in sorted(events, key=lambda e: (e.timestamp, e.id)):
        state, found = scorer.apply(state, e)
        out += found
        if roundtrip:
            state = scorer.load(json.loads(json.dumps(state.to_json())))
    return out


def test_a_metric_spike_after_a_stable_series_is_one_anomaly_with_its_explanation() -> None:
    found = fold(stable_metrics(300, spike_at=250))
    assert [a.signal for a in found] == ["metric:latency_ms"]
    spike = found[0]
    assert spike.event_id == "m-250" and spike.service == "api" and spike.kind == "metric"
    assert 0.5 <= spike.score <= 1.0
    assert spike.explanation["value"] == "400"
    assert 95 < float(spike.explanation["baseline.value"]) < 105
    assert "threshold" in spike.explanation and "hour_of_day" in spike.explanation
    assert spike.detectors and all(d.startswith("metric.") for d in spike.detectors)


def test_a_stable_series_without_a_spike_raises_nothing() -> None:
    assert fold(stable_metrics(300)) == []


def test_a_template_burst_after_a_stable_baseline_is_an_anomaly() -> None:
    found = fold(steady_logs(20, burst_minute=15))
    assert [a.signal for a in found] == ["template_rate:t-get"]
    burst = found[0]
    assert burst.event_id == "l-15-0" and burst.template_id == "t-get"
    assert burst.explanation["count"] == "40" and burst.explanation["baseline_median"] == "4"
    assert burst.timestamp == T0 + timedelta(minutes=16)
    assert burst.explanation["window_start"] == (T0 + timedelta(minutes=15)).isoformat()


def test_a_burst_during_probation_is_not_judged() -> None:
    assert fold(steady_logs(10, burst_minute=2)) == []


def test_an_error_rate_spike_is_an_anomaly() -> None:
    events = steady_logs(13, per_minute=6)
    events += [log(f"e-{j}", timedelta(minutes=10, seconds=30 + j), "t-err", "error") for j in range(8)]
    found = fold(events, Scorer(ScoreConfig(novelty_threshold=0.99)))
    assert "error_rate" in [a.signal for a in found]
    rate = next(a for a in found if a.signal == "error_rate")
    assert rate.event_id == "e-0" and rate.severity.value == "error"
    assert rate.explanation["errors"] == "8" and rate.explanation["events"] == "14"


def test_a_novel_template_after_probation_is_an_anomaly_and_before_it_is_not() -> None:
    early = [*steady_logs(8), log("new-early", timedelta(minutes=2, seconds=30), "t-new", novelty=0.9)]
    assert [a.signal for a in fold(early)] == []
    late = [*steady_logs(8), log("new-late", timedelta(minutes=7, seconds=30), "t-new", novelty=0.9)]
    found = fold(late)
    assert [(a.signal, a.event_id) for a in found] == [("new_template:t-new", "new-late")]
    assert found[0].explanation["novelty"] == "0.9"
    familiar = [*steady_logs(8), log("low", timedelta(minutes=7, seconds=30), "t-new", novelty=0.2)]
    assert fold(familiar) == []


def test_a_redelivered_event_changes_nothing_and_raises_no_duplicate() -> None:
    scorer = Scorer()
    events = stable_metrics(300, spike_at=250)
    state = scorer.new_state("api")
    first: list[Anomaly] = []
    for e in events:
        state, found = scorer.apply(state, e)
        first += found
    before = json.dumps(state.to_json())
    again: list[Anomaly] = []
    for e in events[200:]:  # a replay of the uncommitted tail
        state, found = scorer.apply(state, e)
        again += found
    assert len(first) == 1 and again == []
    assert json.dumps(state.to_json()) == before


def test_the_same_input_gives_the_same_anomalies_with_the_same_ids() -> None:
    events = stable_metrics(300, spike_at=250) + steady_logs(20, burst_minute=15)
    one, two = fold(events), fold(events)
    assert one == two and len(one) == 2
    assert len({a.id for a in one}) == 2


def test_the_state_survives_a_json_round_trip_after_every_event() -> None:
    events = stable_metrics(300, spike_at=250) + steady_logs(20, burst_minute=15)
    assert fold(events, roundtrip=True) == fold(events)


def test_a_state_round_trip_is_exact() -> None:
    scorer = Scorer()
    state = scorer.new_state("api")
    for e in stable_metrics(50) + steady_logs(3):
        state, _ = scorer.apply(state, e)
    data = state.to_json()
    loaded: ServiceScore = scorer.load(json.loads(json.dumps(data)))
    assert loaded.to_json() == data


def test_events_older_than_a_closed_window_are_ignored_as_late() -> None:
    scorer = Scorer()
    state = scorer.new_state("api")
    for e in steady_logs(3):
        state, _ = scorer.apply(state, e)
    state, found = scorer.apply(state, log("old", timedelta(seconds=5)))
    assert found == [] and state.late == 1


def test_the_id_memory_is_bounded() -> None:
    scorer = Scorer(ScoreConfig(max_remembered_ids=10, window_s=3600))
    state = scorer.new_state("api")
    for e in steady_logs(10):
        state, _ = scorer.apply(state, e)
    assert len(state.remembered) <= 10 and state.floor_us > 0


def test_anomalies_encode_as_avro_and_back() -> None:
    anomaly = fold(stable_metrics(300, spike_at=250))[0]
    codec = codec_for("anomaly")
    assert Anomaly.from_avro(codec.decode(codec.encode(anomaly.to_avro()))) == anomaly


def test_a_template_absent_from_windows_and_gaps_is_owed_zeros_in_its_saved_baseline() -> None:
    scorer = Scorer(ScoreConfig(baseline_windows=6))
    state = scorer.new_state("api")
    events = [log("a-0", timedelta(seconds=1), template="t-a")]
    events += [log("b-0", timedelta(seconds=2), template="t-b")]
    events += [log(f"b-{m}", timedelta(minutes=m, seconds=1), template="t-b") for m in (1, 2, 5)]  # gap 3-4
    events += [log("b-late", timedelta(minutes=9, seconds=1), template="t-b")]
    for e in events:
        state, _ = scorer.apply(state, e)
    saved = state.to_json()["templates"]  # windows 0-5 closed (3-4 a gap)
    assert saved == {"t-a": [1.0] + [0.0] * 5, "t-b": [1.0, 1.0, 1.0, 0.0, 0.0, 1.0]}
    loaded = scorer.load(json.loads(json.dumps(state.to_json())))
    assert loaded.to_json() == state.to_json()


def test_template_bursts_of_one_window_come_in_the_order_the_templates_were_first_seen() -> None:
    events = []
    for m in range(20):
        for i, name in enumerate(("t-z", "t-a", "t-m")):
            k, step, at = (40, 1.0, (2 - i) / 3) if m == 15 else (4, 3.0, i)  # t-m first in the burst
            events += [log(f"{name}-{m}-{j}", timedelta(minutes=m, seconds=step * j + at), template=name)
                       for j in range(k)]
    found = fold(events)
    assert [a.signal for a in found] == ["template_rate:t-z", "template_rate:t-a", "template_rate:t-m"]
