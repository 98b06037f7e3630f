"""A worker SIGKILLed halfway through a large backlog, then restarted, produces the same incidents and
anomalies as an uninterrupted run."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from producers.ingest import ingest_file
from producers.publisher import KafkaPublisher
from schemas.codec import codec_for
from schemas.models import Anomaly, Incident
from tests.kafka_utils import Env, consumed, kill_tree, read_topic, stop, wait_for, wait_worker_done

pytestmark = pytest.mark.kafka

T0 = datetime(2024, 2, 1, tzinfo=UTC)
SERVICES = [f"svc-{i}" for i in range(8)]


def write_backlog(path: Path, n: int, seed: int = 11) -> None:
    """``n`` events over ~10 hours: background logs plus error bursts with quiet gaps between."""
    rng = random.Random(seed)
    with open(path, "w") as fh:
        for i in range(n):
            svc = rng.choice(SERVICES)
            ts = T0 + timedelta(seconds=i * 2)
            burst = (i // 600) % 3 == 1 and rng.random() < 0.2
            if i % 10 == 0:  # a latency series per service, with a spike now and then
                value = 900.0 if (i // 10) % 700 == 350 else 100 + rng.gauss(0, 3)
                fh.write(json.dumps({
                    "id": f"m-{i}", "source": "grafana", "kind": "metric", "timestamp": ts.isoformat(),
                    "service": svc, "severity": "info", "message": "latency_ms",
                    "metric": {"name": "latency_ms", "value": value},
                }) + "\n")
                continue
            fh.write(
                json.dumps(
                    {
                        "id": f"e-{i}",
                        "source": rng.choice(["kubernetes", "sentry", "cloudwatch", "grafana"]),
                        "kind": "error" if burst else "log",
                        "timestamp": ts.isoformat(),
                        "service": svc,
                        "severity": "error" if burst else "info",
                        "message": f"request {rng.randint(1, 10_000)} took {rng.randint(1, 900)}ms",
                    }
                )
                + "\n"
            )


def materialize(env: Env) -> dict[str, dict[str, Any]]:
    """The latest state of every incident, and every distinct anomaly (under ``anomaly:ID``)."""
    latest: dict[str, dict[str, Any]] = {}
    for key, value in read_topic(env.topic("incidents")):
        assert key is not None and value is not None
        latest[key.decode()] = Incident.from_avro(codec_for("incident").decode(value)).model_dump(mode="json")
    for _, value in read_topic(env.topic("anomalies")):
        assert value is not None
        anomaly = Anomaly.from_avro(codec_for("anomaly").decode(value))
        latest[f"anomaly:{anomaly.id}"] = anomaly.model_dump(mode="json")
    return latest


def run_to_end(env: Env, total: int, kill_midway: bool) -> dict[str, dict[str, Any]]:
    group = f"seismo-test-{env.run}-correlate"
    worker = env.spawn("worker", log_name="worker")
    try:
        if kill_midway:

            def halfway() -> bool:
                assert worker.poll() is None, env.log_tail("worker")
                done, _ = consumed(group, env.topic("events.enriched"))
                return done >= total * 0.1

            wait_for(halfway, 120, "the worker to get through 10% of the backlog", interval=0.2)
            kill_tree(worker)  # every step process dies at once, mid-batch: no checkpoint
            at_kill = consumed(group, env.topic("events.enriched"))[0]
            assert at_kill < total, "the worker finished before it could be killed: grow the backlog"
            worker = env.spawn("worker", log_name="worker-restarted")

        wait_worker_done(env, worker, total, 240, "worker-restarted" if kill_midway else "worker")
        return materialize(env)
    finally:
        stop(worker)


def test_a_worker_killed_halfway_and_restarted_yields_the_same_incidents_and_anomalies(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    total = 60_000
    path = tmp_path / "backlog.jsonl"
    write_backlog(path, total)
    results = []
    for kill in (False, True):
        env = Env(state_dir=tmp_path / f"state-{kill}", extra={
            "SEISMO_EMBEDDER": "hash", "SEISMO_WORKER_CHECKPOINT_S": "0.5",
            "SEISMO_WORKER_BATCH_SIZE": "200",
        })
        from seismo.topics import Topics, ensure_topics

        ensure_topics(env.settings)
        topics = Topics.from_settings(env.settings)
        summary = ingest_file(path, KafkaPublisher(kafka_bootstrap), topics.raw, topics.dlq)
        assert summary.published == total
        results.append(run_to_end(env, total, kill_midway=kill))
    clean, crashed = results
    assert sum(not k.startswith("anomaly:") for k in clean) > 10
    assert sum(k.startswith("anomaly:") for k in clean) > 3
    assert crashed.keys() == clean.keys()
    for iid, inc in clean.items():
        assert crashed[iid] == inc, iid
