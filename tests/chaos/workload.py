"""The chaos suite's input, its undisturbed reference and its two verdicts: events lost, incidents doubled.

Every scenario publishes the same kind of backlog (logs with error bursts and a latency
series per service, so the correlator opens incidents and the scorer finds anomalies),
runs ``seismo worker`` on it once undisturbed and once under chaos, and compares:

* **lost**: the ids of the raw events that are missing from ``seismo.events.enriched``;
* **incidents**: the latest revision of every incident id (the compacted view a reader
  materializes), which must equal the undisturbed run's, id for id and field for field;
  an extra id is a duplicate incident.

Nothing here knows what the correlator does: the reference run is the oracle.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from fastavro._read_common import SchemaResolutionError

from producers.publisher import KafkaPublisher
from schemas.codec import codec_for
from schemas.exceptions import SchemaError
from schemas.models import Anomaly, Event, Incident
from seismo.topics import ensure_topics
from stream_processors.runtime.worker import STEPS, build_step
from tests.kafka_utils import Env, consumed, read_topic, stop, wait_for

T0 = datetime(2024, 6, 3, tzinfo=UTC)
SERVICES = [f"svc-{i}" for i in range(6)]
TEMPLATES = ("GET /api/orders/{n} 200 in {m} ms", "cache miss for key user:{n}", "worker {n} heartbeat")
WORKER_ENV = {"SEISMO_EMBEDDER": "hash", "SEISMO_WORKER_CHECKPOINT_S": "0.5",
              "SEISMO_WORKER_BATCH_SIZE": "200", "SEISMO_LOG_LEVEL": "WARNING"}


def backlog(n: int, seed: int = 7) -> list[Event]:
    """``n`` events, 0.4 s apart in event time: logs with error bursts, a latency series per service."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        svc = SERVICES[i % len(SERVICES)]
        ts = T0 + timedelta(milliseconds=400 * i)
        burst = (i // 1500) % 3 == 1 and rng.random() < 0.3
        if i % 5 == 0:
            spike = (i // 5) % 700 == 400
            value = 950.0 if spike else 100 + rng.gauss(0, 4)
            out.append(Event(id=f"m-{i}", source="grafana", kind="metric", timestamp=ts, service=svc,
                             severity="info", message="latency_ms",
                             metric={"name": "latency_ms", "value": value}))
            continue
        text = "payment {n} failed: upstream timeout" if burst else rng.choice(TEMPLATES)
        out.append(Event(
            id=f"l-{i}", source=rng.choice(["kubernetes", "sentry", "cloudwatch"]), kind="log", timestamp=ts,
            service=svc, severity="error" if burst else "info",
            message=text.format(n=rng.randint(1, 9999), m=rng.randint(1, 900)),
        ))
    return out


def new_env(tmp_path: Path, name: str, broker: str, redis_url: str, **extra: str) -> Env:
    """A deployment of its own (uuid topics, groups, Redis namespace) on ``broker`` and ``redis_url``."""
    env = Env(state_dir=tmp_path / name, broker=broker,
              extra={**WORKER_ENV, "SEISMO_REDIS_URL": redis_url, **extra})
    ensure_topics(env.settings)
    return env


def encoded(events: Iterable[Event]) -> list[tuple[bytes, bytes]]:
    encode = codec_for("event").encode
    return [(e.service.encode(), encode(e.to_avro())) for e in events]


def publish(env: Env, records: list[tuple[bytes, bytes]], topic: str = "events.raw", pace_s: float = 0.0,
            flush_s: float = 180.0) -> None:
    """Send ``records`` to ``topic``, spread over ``pace_s`` seconds in 20 slices; blocks until every
    one is acknowledged (an outage on the way is waited out) and fails if any was not."""
    pub = KafkaPublisher(env.bootstrap, **{"message.max.bytes": 8 * 1024 * 1024})
    name = env.topic(topic)
    step = max(1, len(records) // 20)
    for start in range(0, len(records), step):
        for key, value in records[start:start + step]:
            pub.publish(name, key, value)
        pub.flush(flush_s)
        time.sleep(pace_s / 20)
    pub.flush(flush_s)
    assert pub.stats.failed == 0, pub.stats.errors
    assert pub.stats.delivered == len(records)


def feeder(env: Env, records: list[tuple[bytes, bytes]], pace_s: float) -> Callable[[], None]:
    """Publish in a thread; the returned call joins it and raises what the thread raised."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            publish(env, records, pace_s=pace_s)
        except BaseException as exc:  # handed to the test thread by join()
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def join() -> None:
        thread.join(240)
        assert not thread.is_alive(), "the feeder did not finish"
        if errors:
            raise errors[0]

    return join


def step_inputs(env: Env) -> dict[str, list[str]]:
    """The topics each step's consumer group reads (asked of the steps themselves)."""
    settings = env.settings
    return {name: list(build_step(settings, name).inputs) for name in STEPS}


def settled(env: Env, inputs: dict[str, list[str]]) -> bool:
    """Every step's group committed the end of every topic it reads."""
    group = f"seismo-test-{env.run}"
    for step, topics in inputs.items():
        for topic in topics:
            try:
                done, end = consumed(f"{group}-{step}", topic, env.bootstrap)
            except KafkaException:  # a coordinator still loading on a broker just (re)started: not yet
                return False
            if done != end:
                return False
    return True


def wait_settled(env: Env, workers: list[Any], timeout: float, log_names: list[str]) -> None:
    """Wait until every step committed the end of its inputs twice in a row, 1 s apart (the end of
    a topic a step writes and another reads must not move between the two looks).  Fails if a
    worker exits or on timeout, with the workers' log tails."""
    inputs = step_inputs(env)
    tails = lambda: "\n".join(f"--- {n}\n{env.log_tail(n)}" for n in log_names)  # noqa: E731
    last = [False]

    def done() -> bool:
        for w in workers:
            assert w.poll() is None, f"a worker exited with {w.returncode}:\n{tails()}"
        now = settled(env, inputs)
        twice, last[0] = now and last[0], now
        return twice

    try:
        wait_for(done, timeout, "every step to consume all of its input", interval=1.0)
    except AssertionError as exc:
        group = f"seismo-test-{env.run}"
        progress = {f"{step} {topic}": consumed(f"{group}-{step}", topic, env.bootstrap)
                    for step, topics in inputs.items() for topic in topics}
        raise AssertionError(f"{exc}; (committed, end): {progress}\n{tails()}") from None


def run_worker_to_the_end(env: Env, timeout: float, log_name: str = "worker") -> None:
    """One ``seismo worker`` until every step consumed all of its input, then stopped; it must exit 0."""
    worker = env.spawn("worker", log_name=log_name)
    try:
        wait_settled(env, [worker], timeout, [log_name])
    finally:
        stop(worker)
    assert worker.returncode == 0, env.log_tail(log_name)


def run_undisturbed(env: Env, records: list[tuple[bytes, bytes]], timeout: float = 120) -> None:
    publish(env, records)
    run_worker_to_the_end(env, timeout)


def incidents(env: Env) -> dict[str, dict[str, Any]]:
    """The latest revision of every incident id on the incidents topic."""
    decode = codec_for("incident").decode
    latest: dict[str, dict[str, Any]] = {}
    for key, value in read_topic(env.topic("incidents"), broker=env.bootstrap):
        assert key is not None and value is not None
        incident = Incident.from_avro(decode(value)).model_dump(mode="json")
        if incident["revision"] >= latest.get(key.decode(), {}).get("revision", -1):
            latest[key.decode()] = incident
    return latest


def anomalies(env: Env) -> dict[str, dict[str, Any]]:
    decode = codec_for("anomaly").decode
    found = {}
    for _, value in read_topic(env.topic("anomalies"), broker=env.bootstrap):
        try:
            anomaly = Anomaly.from_avro(decode(value or b""))
        except (SchemaError, SchemaResolutionError):  # poison a test put there itself
            continue
        found[anomaly.id] = anomaly.model_dump(mode="json")
    return found


def lost(env: Env, events: list[Event]) -> set[str]:
    """Ids of ``events`` that never reached the enriched topic."""
    decode = codec_for("event").decode_plain
    seen = set()
    for _, value in read_topic(env.topic("events.enriched"), 30, broker=env.bootstrap):
        try:
            seen.add(decode(value or b"")["id"])
        except (SchemaError, SchemaResolutionError):  # poison a test put there itself
            continue
    return {e.id for e in events} - seen


ANOMALY_SCORE = re.compile(r"anomaly score [0-9.]+")
def core(incident: dict[str, Any]) -> dict[str, Any]:
    """An incident without its revision and its anomaly annotations.

    The revision counts publications, one per batch that changed the incident, and chaos
    moves where batches end (a replay republishes); it is no part of the content.  The
    anomaly annotations are compared apart (:func:`annotations`).
    """
    masked = {k: ANOMALY_SCORE.sub("anomaly score ...", v) if isinstance(v, str) else v
              for k, v in incident.items() if k != "revision"}
    masked["root_cause_candidates"] = [
        {**c, "reason": ANOMALY_SCORE.sub("anomaly score ...", c["reason"])}
        for c in incident["root_cause_candidates"]
    ]
    masked["evidence"] = [e for e in incident["evidence"] if not e["kind"].startswith("anomaly:")]
    return masked


def annotations(incident: dict[str, Any]) -> tuple[list[tuple[str, str, str]], list[str]]:
    """The anomalies an incident cites (time, event id, kind) and the anomaly scores its root causes quote."""
    rows = [e for e in incident["evidence"] if e["kind"].startswith("anomaly:")]
    cited = sorted((e["timestamp"], e["event_id"], e["kind"]) for e in rows)
    quoted = [m for c in incident["root_cause_candidates"] for m in ANOMALY_SCORE.findall(c["reason"])]
    return cited, quoted


def assert_same_outcome(reference: Env, chaos: Env, events: list[Event]) -> None:
    """0 events lost; the reference run's incidents, none missing, none doubled, each equal to the
    reference's (revision aside); the reference's anomalies; the same anomalies cited by each
    incident (compared apart, so a failure says which part differs)."""
    missing = lost(chaos, events)
    assert not missing, f"{len(missing)} events never reached the enriched topic, e.g. {sorted(missing)[:5]}"
    expected, got = incidents(reference), incidents(chaos)
    assert len(expected) >= 2, "the backlog must open incidents for the comparison to mean something"
    extra, absent = got.keys() - expected.keys(), expected.keys() - got.keys()
    assert not extra and not absent, f"duplicate incidents {sorted(extra)}, missing {sorted(absent)}"
    for iid, incident in expected.items():
        want, have = core(incident), core(got[iid])
        diff = {k: (v, have.get(k)) for k, v in want.items() if have.get(k) != v}
        assert not diff, f"incident {iid} differs from the undisturbed run's (undisturbed, chaos): {diff}"
    assert anomalies(chaos) == anomalies(reference)
    drifted = sorted(i for i, incident in expected.items() if annotations(incident) != annotations(got[i]))
    assert not drifted, f"the anomalies cited by incidents {drifted} differ from the undisturbed run's"
