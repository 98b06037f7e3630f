"""The score runtime on the real broker and Redis: crash replay, dead letters, and the worker's child."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from models.series import MetricDetector, ScoredPoint
from producers.publisher import KafkaPublisher
from schemas.codec import codec_for
from schemas.models import Anomaly, DeadLetter, Event
from seismo.local.process import child_pids
from seismo.topics import ensure_topics
from tests.kafka_utils import Env, bootstrap, consumed, read_topic, stop, wait_for

pytestmark = pytest.mark.kafka

T0 = datetime(2024, 4, 2, tzinfo=UTC)
SERVICES = [f"svc-{i}" for i in range(6)]


def backlog(n: int, seed: int = 3) -> list[Event]:
    """Metric series and log templates per service, with spikes and bursts the scorer must find."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        svc = SERVICES[i % len(SERVICES)]
        ts = T0 + timedelta(milliseconds=250 * i)
        if i % 4 == 0:
            spike = (i // 4) % 997 == 500
            out.append(Event(
                id=f"m-{i}", source="cloudwatch", kind="metric", timestamp=ts, service=svc, severity="info",
                message="latency",
                metric={"name": "latency_ms", "value": 900.0 if spike else 100 + rng.gauss(0, 3)},
            ))
        else:
            burst = (i // 2400) % 5 == 3 and rng.random() < 0.5
            t = 9 if burst else rng.randrange(3)
            out.append(Event(
                id=f"l-{i}", source="kubernetes", kind="log", timestamp=ts, service=svc,
                severity="error" if burst else "info", message=f"line {t}", template_id=f"{svc}-t{t}",
                template=f"template {t} <NUM>", novelty=0.9 if burst else 0.1,
            ))
    return out


def publish(env: Env, events: list[Event]) -> None:
    codec = codec_for("event")
    pub = KafkaPublisher(bootstrap())
    for e in events:
        pub.publish(env.topic("events.enriched"), e.service.encode(), codec.encode(e.to_avro()))
    pub.flush()


def scored(env: Env) -> tuple[int, int]:
    return consumed(f"seismo-test-{env.run}-score", env.topic("events.enriched"))


def spawn_scorer(env: Env, log_name: str) -> subprocess.Popen[bytes]:
    return env.spawn("worker", "--role", "score", log_name=log_name)


def wait_scored(env: Env, proc: subprocess.Popen[bytes], total: int, log_name: str) -> None:
    def done() -> bool:
        assert proc.poll() is None, env.log_tail(log_name)
        return scored(env) == (total, total)

    wait_for(done, 180, f"the score runtime to commit all {total} events", interval=0.3)


def anomalies(env: Env) -> list[Anomaly]:
    codec = codec_for("anomaly")
    return [Anomaly.from_avro(codec.decode(v)) for _, v in read_topic(env.topic("anomalies")) if v]


def saved_states(env: Env) -> dict[str, Any]:
    client = redis.Redis.from_url(env.settings.redis)
    try:
        name = f"seismo:seismo-test-{env.run}:state"
        states = {k.decode(): json.loads(v) for k, v in client.hgetall(name).items()
                  if k.startswith(b"score:")}  # not the runtime's replay fences
        client.delete(name)
        return states
    finally:
        client.close()


def without_detectors(states: dict[str, Any]) -> dict[str, Any]:
    return {k: {**s, "metrics": {n: m[0] for n, m in s["metrics"].items()}} for k, s in states.items()}


def behaviour(doc: object) -> list[ScoredPoint]:
    """What a saved metric detector makes of the same 200 further points, spike included."""
    detector = MetricDetector()
    detector.from_state(doc)
    rng = random.Random(9)
    start = T0 + timedelta(days=1)
    return [
        detector.process(start + timedelta(minutes=i), 700.0 if i == 150 else 100 + rng.gauss(0, 3))
        for i in range(200)
    ]


def run(env: Env, events: list[Event], kill_midway: bool) -> tuple[list[Anomaly], dict[str, Any]]:
    ensure_topics(env.settings)
    publish(env, events)
    proc = spawn_scorer(env, "score")
    try:
        if kill_midway:
            wait_for(lambda: scored(env)[0] >= len(events) * 0.3, 120, "a third of the events committed",
                     interval=0.05)
            assert scored(env)[0] < len(events), "finished before the kill: make the backlog larger"
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            proc = spawn_scorer(env, "score-restarted")
        wait_scored(env, proc, len(events), "score-restarted" if kill_midway else "score")
    finally:
        stop(proc)
    return anomalies(env), saved_states(env)


def test_a_score_runtime_killed_midway_ends_with_the_same_anomalies_and_states(tmp_path: Path) -> None:
    events = backlog(24_000)
    knobs = {"SEISMO_WORKER_CHECKPOINT_S": "0.2", "SEISMO_WORKER_BATCH_SIZE": "100"}
    calm, calm_states = run(Env(tmp_path / "calm", extra=knobs), events, kill_midway=False)
    killed, killed_states = run(Env(tmp_path / "killed", extra=knobs), events, kill_midway=True)

    calm_ids = [a.id for a in calm]
    assert {a.signal.split(":")[0] for a in calm} >= {"metric", "new_template", "error_rate"}
    assert len(set(calm_ids)) == len(calm_ids)
    assert {a.id for a in killed} == set(calm_ids)  # at-least-once: a replay may publish an id twice
    assert without_detectors(killed_states) == without_detectors(calm_states)
    # compare what equal detectors do next, not their documents' bytes
    for key, state in calm_states.items():
        for name, (_, blob) in state["metrics"].items():
            assert behaviour(killed_states[key]["metrics"][name][1]) == behaviour(blob)
    assert set(calm_states) == {f"score:{s}" for s in SERVICES}


def test_undecodable_and_invalid_events_are_dead_lettered_and_scoring_goes_on(
    seismo_env: Env,
) -> None:
    env = seismo_env
    ensure_topics(env.settings)
    good = backlog(400)
    no_metric = good[0].to_avro() | {"id": "bad-metric", "metric": None}
    pub = KafkaPublisher(bootstrap())
    topic = env.topic("events.enriched")
    publish(env, good[:200])
    pub.publish(topic, b"svc-0", b"\x00not avro at all")
    pub.publish(topic, b"svc-0", codec_for("event").encode(no_metric))
    pub.flush()
    publish(env, good[200:])
    proc = spawn_scorer(env, "score")
    try:
        wait_scored(env, proc, 402, "score")
    finally:
        stop(proc)

    codec = codec_for("dead_letter")
    letters = [DeadLetter.from_avro(codec.decode(v)) for _, v in read_topic(env.topic("dlq")) if v]
    assert sorted(letter.error_type for letter in letters) == ["invalid_event", "undecodable"]
    assert {letter.component for letter in letters} == {"score"}
    assert all(letter.topic == topic and letter.original_key == b"svc-0" for letter in letters)
    assert any("metric" in letter.reason for letter in letters)
    last = {e.service: e.timestamp for e in good}
    states = saved_states(env)
    assert {k: s["watermark_us"] for k, s in states.items()} == {
        f"score:{svc}": int(ts.timestamp() * 1_000_000) for svc, ts in last.items()
    }


def children(pid: int) -> list[int]:
    """The score runtime children of `pid` (the worker runs one child per step)."""
    out = []
    for child in child_pids(pid):
        try:
            argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--role" in argv and b"score" in argv:
            out.append(child)
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_the_worker_runs_the_scorer_as_a_child_that_dies_with_it_and_stops_it(seismo_env: Env) -> None:
    env = seismo_env
    worker = env.spawn("worker", log_name="worker")
    try:
        wait_for(lambda: len(children(worker.pid)) == 1, 60, "the score runtime child")
        (child,) = children(worker.pid)
        os.kill(child, signal.SIGKILL)
        assert worker.wait(60) != 0, env.log_tail("worker")
        assert "score runtime exited" in env.log_tail("worker", 200)

        worker = env.spawn("worker", log_name="worker-2")
        wait_for(lambda: len(children(worker.pid)) == 1, 60, "the score runtime child")
        (child,) = children(worker.pid)
        worker.send_signal(signal.SIGKILL)
        worker.wait(30)
        wait_for(lambda: not alive(child), 30, "the orphaned score runtime to exit")
    finally:
        stop(worker)
