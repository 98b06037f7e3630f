"""Workers share a step by consumer groups: two workers, a third joining and one leaving mid-stream
produce the incidents and anomalies of one worker, none duplicated."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from producers.publisher import KafkaPublisher
from schemas.codec import codec_for
from schemas.models import Anomaly, Event, Incident
from seismo.topics import ensure_topics
from tests.kafka_utils import (
    Env,
    bootstrap,
    consumed,
    read_topic,
    stop,
    wait_for,
    wait_worker_done,
)

pytestmark = pytest.mark.kafka

T0 = datetime(2024, 3, 5, tzinfo=UTC)
SERVICES = [f"svc-{i}" for i in range(12)]
TEMPLATES = ("GET /api/orders/{n} 200 in {m} ms", "cache miss for key user:{n}", "worker {n} heartbeat")


def backlog(n: int, seed: int = 5) -> list[Event]:
    """Logs and a metric per service, with error bursts and metric spikes to find."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        svc = SERVICES[i % len(SERVICES)]
        ts = T0 + timedelta(milliseconds=400 * i)
        burst = (i // 3000) % 4 == 2 and rng.random() < 0.3
        if i % 5 == 0:
            spike = (i // 5) % 1500 == 900
            out.append(Event(
                id=f"m-{i}", source="grafana", kind="metric", timestamp=ts, service=svc, severity="info",
                message="latency_ms", metric={"name": "latency_ms", "value": 950.0 if spike else
                                              100 + rng.gauss(0, 4)},
            ))
            continue
        text = "payment {n} failed: upstream timeout" if burst else rng.choice(TEMPLATES)
        out.append(Event(
            id=f"l-{i}", source=rng.choice(["kubernetes", "sentry", "cloudwatch"]), kind="log", timestamp=ts,
            service=svc, severity="error" if burst else "info",
            message=text.format(n=rng.randint(1, 9999), m=rng.randint(1, 900)),
        ))
    return out


def publish(env: Env, events: list[Event], pace_s: float = 0.0) -> None:
    """To the raw topic, keyed by service; spread over ``pace_s`` seconds in 20 slices."""
    codec, pub = codec_for("event"), KafkaPublisher(bootstrap())
    step = max(1, len(events) // 20)
    for start in range(0, len(events), step):
        for e in events[start:start + step]:
            pub.publish(env.topic("events.raw"), e.service.encode(), codec.encode(e.to_avro()))
        pub.flush()
        time.sleep(pace_s / 20)


def results(env: Env) -> tuple[dict[str, Any], dict[str, Any], int]:
    """Latest incident per id, anomalies by id, and the number of anomaly messages."""
    incidents: dict[str, Any] = {}
    for key, value in read_topic(env.topic("incidents")):
        assert key is not None and value is not None
        incident = Incident.from_avro(codec_for("incident").decode(value))
        incidents[key.decode()] = incident.model_dump(mode="json")
    decode = codec_for("anomaly").decode
    messages = [Anomaly.from_avro(decode(v)) for _, v in read_topic(env.topic("anomalies")) if v]
    anomalies = {a.id: a.model_dump(mode="json") for a in messages}
    return incidents, anomalies, len(messages)


def new_env(tmp_path: Any, name: str) -> Env:
    env = Env(state_dir=tmp_path / name, extra={"SEISMO_PARTITIONS": "6", "SEISMO_EMBEDDER": "hash",
                                                "SEISMO_WORKER_CHECKPOINT_S": "1"})
    ensure_topics(env.settings.model_copy(update={"partitions": 6}))
    return env


def test_workers_joining_and_leaving_mid_stream_yield_the_incidents_and_anomalies_of_one_worker(
    kafka_bootstrap: str, tmp_path: Any
) -> None:
    events = backlog(36_000)
    total = len(events)

    single = new_env(tmp_path, "single")
    publish(single, events)
    worker = single.spawn("worker", log_name="worker")
    try:
        wait_worker_done(single, worker, total, 300)
    finally:
        stop(worker)
    expected_incidents, expected_anomalies, _ = results(single)
    assert len(expected_incidents) >= 3 and len(expected_anomalies) >= 3, "the backlog must find something"

    shared = new_env(tmp_path, "shared")
    feeder = threading.Thread(target=publish, args=(shared, events, 24.0))
    feeder.start()
    a = shared.spawn("worker", log_name="a")
    b = shared.spawn("worker", log_name="b")
    c = None
    correlate = f"seismo-test-{shared.run}-correlate"
    try:
        wait_for(lambda: consumed(correlate, shared.topic("events.enriched"))[0] >= total // 4, 120,
                 "a quarter of the stream to be correlated", interval=0.3)
        c = shared.spawn("worker", log_name="c")  # joins mid-stream
        wait_for(lambda: consumed(correlate, shared.topic("events.enriched"))[0] >= total // 2, 120,
                 "half of the stream to be correlated", interval=0.3)
        stop(a)  # leaves mid-stream (SIGTERM: checkpoint, leave the groups)
        assert a.returncode == 0, shared.log_tail("a")
        feeder.join(120)
        wait_worker_done(shared, b, total, 300, "b")
        assert c.poll() is None, shared.log_tail("c")
    finally:
        for proc in (a, b, c):
            if proc is not None:
                stop(proc)
    incidents, anomalies, messages = results(shared)
    assert incidents == expected_incidents
    assert anomalies == expected_anomalies
    assert messages == len(anomalies), "an anomaly was published twice"
