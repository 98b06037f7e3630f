"""The correlate step without a broker: a simulated estate's incidents, whatever the batching."""

from __future__ import annotations

import zlib
from datetime import timedelta

from producers.simulate import simulate
from schemas.codec import codec_for
from schemas.models import Event, Incident
from seismo.topics import Topics
from stream_processors.correlate.adapter import CorrelateAdapter
from stream_processors.correlate.correlator import CorrelatorConfig
from stream_processors.correlate.probe import FixedProbe
from stream_processors.runtime.step import Output, Record

TOPICS = Topics("raw", "enriched", "anomalies", "cursors", "incidents", "dlq", "signals")


def partitioned(events: list[Event], partitions: int) -> list[list[Record]]:
    """The events as enriched records, keyed and partitioned by service as the normalizer sends them."""
    encode = codec_for("event").encode
    parts: list[list[Record]] = [[] for _ in range(partitions)]
    for e in events:
        p = zlib.crc32(e.service.encode()) % partitions
        parts[p].append(Record(TOPICS.enriched, p, len(parts[p]), e.service.encode(), encode(e.to_avro()), 0))
    return parts


def run(events: list[Event], batch: int, partitions: int = 3, restart_every: int = 0) -> dict[str, Incident]:
    """Drive the step like the runtime; ``restart_every`` batches, restore every state from a store."""
    store: dict[str, dict[str, object]] = {}
    step = CorrelateAdapter(TOPICS, CorrelatorConfig(max_evidence=500), FixedProbe(partitions))
    step.attach(lambda key: store.get(key))  # type: ignore[arg-type, return-value]
    decode = codec_for("incident").decode
    parts = partitioned(events, partitions)
    latest: dict[str, Incident] = {}
    cursor, loop, rounds = [0] * partitions, [], 0
    while any(c < len(p) for c, p in zip(cursor, parts, strict=True)) or loop:
        records = [r for p in range(partitions) for r in parts[p][cursor[p]:cursor[p] + batch * (p + 1)]]
        cursor = [c + batch * (p + 1) for p, c in enumerate(cursor)]
        records, loop = records + loop, []
        out = Output()
        for r in records:
            step.handle(r, out)
        step.end_batch(out)
        store.update(step.dirty_states())  # type: ignore[arg-type]
        for topic, key, value in out.records:
            if topic == TOPICS.signals:
                loop.append(Record(TOPICS.signals, 0, 0, key, value, 0))
            elif key is not None:
                latest[key.decode()] = Incident.from_avro(decode(value))
        rounds += 1
        if restart_every and rounds % restart_every == 0:
            step.revoked()
    return latest


def test_the_incidents_are_the_same_whatever_the_batching_and_restarts() -> None:
    events, _ = simulate(6, 4, seed=5, duration=timedelta(minutes=90))
    a = run(events, batch=100)
    b = run(events, batch=37, restart_every=5)
    assert a and a == b


def test_the_incident_holding_most_of_each_fault_names_its_root_cause_first() -> None:
    events, truth = simulate(8, 4, seed=21, duration=timedelta(minutes=90))
    incidents = [i for i in run(events, batch=200).values() if not i.merged_into]
    owner = {e: f.id for f in truth.incidents for e in f.event_ids}
    right = 0
    for fault in truth.incidents:
        share = {i.id: sum(owner.get(e.event_id) == fault.id for e in i.evidence) for i in incidents}
        best = next(i for i in incidents if i.id == max(share, key=lambda k: (share[k], k)))
        assert share[best.id] > 0, fault.id
        right += best.root_cause_candidates[0].service == fault.root_cause
        assert best.label_quality > 0 and best.graph_nodes and best.summary
        assert best.root_cause_candidates[0].service in best.title
    assert right >= 3


def test_a_published_incident_carries_remediation_with_risk_classes_and_commands() -> None:
    events, _ = simulate(6, 3, seed=9, duration=timedelta(minutes=60))
    incidents = [i for i in run(events, batch=200).values() if i.remediation_suggestions]
    assert incidents
    for inc in incidents:
        for r in inc.remediation_suggestions:
            assert r.risk in ("read-only", "reversible", "destructive")
            assert r.command and r.validation and 0 < r.success_probability < 1


def run_with_score(
    events: list[Event], batch: int, score_lag: int, partitions: int = 3
) -> dict[str, Incident]:
    """Correlate and score side by side like the runtime, the score step's anomalies reaching the
    correlator ``score_lag`` batches after the events they were scored on (a score worker that lags,
    even past the end of the input)."""
    from stream_processors.score.adapter import ScoreAdapter
    from stream_processors.score.scorer import ScoreConfig, Scorer

    store: dict[str, dict[str, object]] = {}
    decode = codec_for("incident").decode
    parts = partitioned(events, partitions)
    probe = FixedProbe(partitions, ends={p: len(parts[p]) for p in range(partitions)})
    step = CorrelateAdapter(TOPICS, CorrelatorConfig(max_evidence=20, anomaly_floor=0.3), probe)
    step.attach(lambda key: store.get(key))  # type: ignore[arg-type, return-value]
    score = ScoreAdapter(TOPICS, Scorer(ScoreConfig()))
    latest: dict[str, Incident] = {}
    delayed: list[list[Record]] = []
    cursor, loop = [0] * partitions, []
    while any(c < len(p) for c, p in zip(cursor, parts, strict=True)) or loop or delayed:
        records = [r for p in range(partitions) for r in parts[p][cursor[p]:cursor[p] + batch]]
        cursor = [c + batch for c in cursor]
        scored = Output()
        for r in records:
            score.handle(r, scored)
        score.end_batch(scored)
        if records:
            delayed.append([Record(TOPICS.anomalies, 0, 0, k, v, 0)
                            for t, k, v in scored.records if t == TOPICS.anomalies])
        arrived: list[Record] = []
        while len(delayed) > score_lag:
            arrived += delayed.pop(0)
        if not records and delayed:  # the input is done; the score step still catches up
            arrived += delayed.pop(0)
        out = Output()
        for r in records + loop + arrived:
            step.handle(r, out)
        step.end_batch(out)
        loop = []
        for topic, key, value in out.records:
            if topic == TOPICS.signals:
                loop.append(Record(TOPICS.signals, 0, 0, key, value, 0))
            elif key is not None:
                latest[key.decode()] = Incident.from_avro(decode(value))
    return latest


def test_the_anomalies_an_incident_cites_do_not_depend_on_how_far_the_score_step_lags() -> None:
    events, _ = simulate(6, 4, seed=5, duration=timedelta(minutes=90))
    prompt = run_with_score(events, batch=100, score_lag=0)
    lagging = run_with_score(events, batch=100, score_lag=4)
    cited = [e for i in prompt.values() for e in i.evidence if e.kind.startswith("anomaly:")]
    assert cited, "the scenario must have incidents that cite anomalies for the comparison to mean something"
    assert prompt == lagging
    late = run_with_score(events, batch=100, score_lag=40)  # every anomaly after the last event
    assert prompt == late


def test_a_new_log_template_is_shown_on_an_incident_only_when_its_line_is_an_error() -> None:
    from stream_processors.correlate.annotate import evidential
    from stream_processors.correlate.signals import from_anomaly

    def anomaly(signal: str, severity: str) -> dict[str, object]:
        return from_anomaly({"id": f"{signal}-{severity}", "timestamp": 1_700_000_000_000_000,
                             "service": "cart", "severity": severity, "signal": signal, "score": 0.9,
                             "message": "new log template: user <NUM> logged in via sso"}).to_json()

    assert not evidential(anomaly("new_template:T1", "warning"))  # an ordinary line, seen for the first time
    assert not evidential(anomaly("new_template:T1", "info"))
    assert evidential(anomaly("new_template:T2", "error"))
    assert evidential(anomaly("new_template:T2", "critical"))
    assert evidential(anomaly("metric:latency_ms", "warning"))  # measurements of the service: any severity
    assert evidential(anomaly("error_rate", "warning"))

    # an incident of cart from t to t + 60 s: what it is shown with among cart's kept anomalies
    from stream_processors.correlate.annotate import annotated
    from stream_processors.correlate.incident_state import IncidentState, ServiceFacts

    t = 1_700_000_000_000_000
    inc = IncidentState("inc-1", t, t, t + 60_000_000, services={"cart": ServiceFacts(t, t + 60_000_000, 3)})
    kept = sorted((dict(anomaly(sig, sev), t=t + 10_000_000 * i) for i, (sig, sev) in enumerate(
        [("new_template:T1", "warning"), ("new_template:T2", "error"), ("metric:latency_ms", "warning")])),
        key=lambda a: int(a["t"]))
    shown = annotated(inc, [inc], {"cart": kept}, CorrelatorConfig(anomaly_floor=0.6))
    assert sorted(row[3] for row in shown.evidence) == [
        "anomaly:metric:latency_ms", "anomaly:new_template:T2"]
