"""Benchmark the anomaly scorer: in process, through the worker on the real Kafka, and restore.

Synthetic enriched events over ``--entities`` services (each: one metric series
``latency_ms`` and three log templates; ``--metric-share`` of the events are metric
points, 0.25 by default), event time advancing 10 ms per event.  Printed:

* **in process**: events/s of ``Scorer.apply`` alone, and of Avro decode +
  ``Observation`` + apply (what the score runtime does per event), CPU time of this
  thread;
* **worker**: the events are published to ``seismo.events.enriched`` of a fresh topic
  prefix and app id, then ``seismo worker --role score`` (the score runtime alone)
  is started; events/s is N / (time from the worker's start until its consumer
  group ``{app_id}-score`` has committed all N).  Start-up is included and printed
  separately (time to the first commit), and the steady rate: events committed from
  the first commit to the last, over that time;
* **restore**: one event for each of ``--restore-entities`` services is scored (so
  each has a saved state in Redis), then one more event each is published and a
  fresh worker started: time until all are committed (start-up + loading every state
  in batches + processing); and, in process, the time to load and decode every saved
  state from Redis one after the other;
* **full-size restore** (``--states N``, 10000 by default): N saved states of services whose
  metric series has full windows (2,400 points: every baseline, calibration and threshold
  window full, every seasonal bucket filled) are written to Redis, then restored the way the
  score runtime does (``load_many`` in batches of ``--batch`` keys, ``Scorer.load``, and the
  series' detector decoded): prints bytes per state, the time to fetch and parse, and the
  time until every detector is decoded and ready.  Target: < 10 s for 10k states.

Needs the broker and Redis of ``seismo kafka start`` / ``seismo redis start`` (or the
``SEISMO_KAFKA_BOOTSTRAP`` / ``SEISMO_REDIS_URL`` they point at).  Creates its own
topics and Redis hash and deletes them at the end.

Usage: python bench/score_throughput.py [--events 500000] [--entities 1000] [--metric-share 0.25]
       [--restore-entities 10000] [--skip-kafka] [--states 10000] [--batch 250] [--only-restore]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from models.series import MetricDetector, ScoredPoint
from producers.publisher import KafkaPublisher
from schemas.codec import codec_for
from schemas.models import Event
from seismo.settings import Settings
from seismo.topics import Topics, ensure_topics
from stream_processors.runtime.state import RedisStateStore
from stream_processors.score.observation import Observation
from stream_processors.score.scorer import Scorer, ServiceScore

T0 = datetime(2024, 6, 3, tzinfo=UTC)
TEMPLATES = ("GET /api/<*> 200 in <NUM>ms", "cache miss for key <HEX>", "worker <NUM> heartbeat")


def synthetic(
    n: int, entities: int, seed: int = 7, offset: int = 0, metric_share: float = 0.25
) -> list[Event]:
    rng = random.Random(seed)
    out = []
    for i in range(offset, offset + n):
        svc = f"svc-{rng.randrange(entities)}" if offset == 0 else f"svc-{i - offset}"
        ts = T0 + timedelta(milliseconds=10 * i)
        if rng.random() < metric_share:
            out.append(Event(
                id=f"b-{i}", source="cloudwatch", kind="metric", timestamp=ts, service=svc, severity="info",
                message="latency", metric={"name": "latency_ms", "value": 100 + rng.gauss(0, 5)},
            ))
        else:
            t = rng.randrange(len(TEMPLATES))
            out.append(Event(
                id=f"b-{i}", source="kubernetes", kind="log", timestamp=ts, service=svc, severity="info",
                message=TEMPLATES[t], template_id=f"{svc}-t{t}", template=TEMPLATES[t], novelty=0.1,
            ))
    return out


def in_process(events: list[Event]) -> None:
    codec = codec_for("event")
    encoded = [codec.encode(e.to_avro()) for e in events]
    observations = [Observation.from_event(e) for e in events]
    for label, decode in (("apply only", False), ("decode + apply", True)):
        scorer = Scorer()
        states: dict[str, object] = {}
        found = 0
        start = time.thread_time()
        for e, raw in zip(observations, encoded, strict=True):
            ev = Observation.from_record(codec.decode_plain(raw)) if decode else e
            state = states.get(ev.service) or scorer.new_state(ev.service)
            state, out = scorer.apply(state, ev)  # type: ignore[arg-type]
            states[ev.service] = state
            found += len(out)
        cpu = time.thread_time() - start
        print(f"in process, {label:15s}: {len(events) / cpu:>10,.0f} events/s  ({cpu:.2f} s CPU, "
              f"{found} anomalies, {len(states)} services)")


def committed(settings: Settings, topic: str) -> int:
    c = Consumer({"bootstrap.servers": settings.bootstrap, "group.id": f"{settings.app_id}-score",
                  "enable.auto.commit": False})
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        tps = [TopicPartition(topic, p) for p in parts]
        return sum(max(tp.offset, 0) for tp in c.committed(tps, timeout=10))
    finally:
        c.close()


def publish(settings: Settings, topic: str, events: list[Event]) -> None:
    codec = codec_for("event")
    pub = KafkaPublisher(settings.bootstrap)
    for e in events:
        pub.publish(topic, e.service.encode(), codec.encode(e.to_avro()))
    pub.flush()


def run_until(
    env: dict[str, str], settings: Settings, topic: str, want: int, log: Path
) -> tuple[float, int, float]:
    """Start a worker; return (seconds to its first commit, events that commit covered,
    seconds until ``want`` are committed)."""
    base = committed(settings, topic)
    start = time.monotonic()
    with open(log, "ab") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "seismo", "worker", "--role", "score"], env=env,
                                stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    first, at_first = 0.0, 0
    try:
        deadline = start + 600
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"worker exited with {proc.returncode}; see {log}")
            done = committed(settings, topic) - base
            if done and not first:
                first, at_first = time.monotonic() - start, done
            if done >= want:
                return first, at_first, time.monotonic() - start
            time.sleep(0.2)
        raise SystemExit(f"worker did not consume {want} events within 600 s; see {log}")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def restore_from_redis(settings: Settings, entities: int) -> tuple[float, int]:
    store = RedisStateStore(settings.redis, namespace=settings.app_id)
    scorer = Scorer()
    size = 0
    start = time.perf_counter()
    for i in range(entities):
        data = await store.load(f"score:svc-{i}")
        if data is not None:
            scorer.load(data)
            size += len(str(data))
    took = time.perf_counter() - start
    await store._redis.delete(store.hash_name)
    await store.close()
    return took, size


def full_size_state(scorer: Scorer, seed: int, points: int = 2400) -> dict[str, object]:
    """The saved state of a service whose one metric series has full windows."""
    state = scorer.new_state("template")
    detector = state.detector("latency_ms", scorer.cfg.seed)
    rng = random.Random(seed)
    for i in range(points):  # 5-minute points: 8.3 days, so every hour-of-week bucket is filled
        detector.process(T0 + timedelta(minutes=5 * i), 100 + 10 * rng.random() + rng.gauss(0, 5))
    state.metric_last_us["latency_ms"] = int((T0 + timedelta(minutes=5 * points)).timestamp() * 1e6)
    return state.to_json()


def _next_points(detector: MetricDetector) -> list[ScoredPoint]:
    rng = random.Random(99)
    later = T0 + timedelta(days=9)
    return [detector.process(later + timedelta(minutes=5 * i), 100 + rng.gauss(0, 5)) for i in range(50)]


async def full_size_restore(url: str, n: int, batch: int) -> None:
    scorer = Scorer()
    templates = [full_size_state(scorer, seed) for seed in range(8)]
    store = RedisStateStore(url, namespace=f"bench-restore-{uuid.uuid4().hex[:8]}")
    try:
        size = 0
        for chunk in range(0, n, batch):
            values = {}
            for i in range(chunk, min(chunk + batch, n)):
                values[f"score:svc-{i}"] = {**templates[i % len(templates)], "service": f"svc-{i}"}
                size += len(json.dumps(values[f"score:svc-{i}"], separators=(",", ":")))
            await store.save_many(values)
        print(f"full-size restore: {n} states written, {size / n / 1024:.1f} KiB of JSON per state "
              f"({size / n:,.0f} bytes; {size / 2**20:,.0f} MiB in all)")
        keys = [f"score:svc-{i}" for i in range(n)]
        states: dict[str, ServiceScore] = {}
        fetch = 0.0
        start, cpu = time.perf_counter(), time.thread_time()
        for first in range(0, n, batch):
            t = time.perf_counter()
            loaded = await store.load_many(keys[first : first + batch])
            fetch += time.perf_counter() - t
            for key, data in loaded.items():
                service = key.removeprefix("score:")
                state = scorer.load(data, service=service)
                state.detector("latency_ms", scorer.cfg.seed)  # decoded and ready to score
                states[service] = state
        took, cpu = time.perf_counter() - start, time.thread_time() - cpu
        assert len(states) == n, f"{n - len(states)} states did not restore"
        fresh = [p.score for p in _next_points(scorer.load(templates[0]).detector("latency_ms", 0))]
        restored = [p.score for p in _next_points(states["svc-0"].detector("latency_ms", 0))]
        assert restored == fresh, "a restored state scores differently from the saved one"
        assert restored != [p.score for p in _next_points(MetricDetector())], "the state was not restored"
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"full-size restore: {n} states fetched (load_many, {batch} a batch) and decoded, every "
              f"detector ready, in {took:.2f} s ({took / n * 1e3:.2f} ms a state; fetch + JSON parse "
              f"{fetch:.2f} s; {cpu:.2f} s CPU of this thread); peak RSS {peak:,.0f} MiB; "
              "target < 10 s for 10k")
    finally:
        await store._redis.delete(store.hash_name)
        await store.close()


def kafka(events: list[Event], restore_entities: int) -> None:
    run = uuid.uuid4().hex[:8]
    tmp = Path(tempfile.mkdtemp(prefix="seismo-bench-"))
    env = {**os.environ, "SEISMO_TOPIC_PREFIX": f"bench-{run}.", "SEISMO_APP_ID": f"seismo-bench-{run}",
           "SEISMO_STATE_DIR": str(tmp), "SEISMO_LOG_LEVEL": "WARNING", "SEISMO_EMBEDDER": "off"}
    settings = Settings(topic_prefix=f"bench-{run}.", app_id=f"seismo-bench-{run}", state_dir=tmp,
                        kafka_bootstrap=os.environ.get("SEISMO_KAFKA_BOOTSTRAP"))
    topics = Topics.from_settings(settings)
    ensure_topics(settings)
    try:
        publish(settings, topics.enriched, events)
        first, at_first, total = run_until(env, settings, topics.enriched, len(events), tmp / "worker.log")
        rate = (len(events) - at_first) / (total - first) if total > first else float("nan")
        print(f"worker, {len(events)} events: {total:.1f} s from start ({first:.1f} s to the first commit): "
              f"{len(events) / total:,.0f} events/s overall, {rate:,.0f} events/s from the first commit "
              f"({at_first} events) to the last")
        n = restore_entities
        # every one of the n services gets a saved state, then a restarted worker one more event each
        publish(settings, topics.enriched, synthetic(n, n, offset=len(events)))
        run_until(env, settings, topics.enriched, n, tmp / "worker.log")
        publish(settings, topics.enriched, synthetic(n, n, offset=len(events) + n))
        first, _, total = run_until(env, settings, topics.enriched, n, tmp / "worker.log")
        print(f"restart with {n} saved states, one event each: first commit after {first:.1f} s, "
              f"all {n} committed after {total:.1f} s")
        took, size = asyncio.run(restore_from_redis(settings, n))
        print(f"restore in process: {n} states loaded from Redis and decoded in {took:.2f} s "
              f"({size / max(n, 1) / 1024:.1f} KiB of JSON per state on average)")
    finally:
        admin = AdminClient({"bootstrap.servers": settings.bootstrap})
        for f in admin.delete_topics([t for t in vars(topics).values()], operation_timeout=30).values():
            try:
                f.result(30)
            except Exception as exc:  # a topic that was never created: nothing to clean
                print(f"(cleanup: {exc})")
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=500_000, help="synthetic enriched events (500000)")
    parser.add_argument("--entities", type=int, default=1_000, help="services they spread over (1000)")
    parser.add_argument("--restore-entities", type=int, default=10_000,
                        help="saved states a restarted worker has to restore (10000)")
    parser.add_argument("--metric-share", type=float, default=0.25,
                        help="share of metric points among the events (0.25); the rest are log lines")
    parser.add_argument("--skip-kafka", action="store_true", help="only the in-process figures")
    parser.add_argument("--states", type=int, default=10_000,
                        help="full-size metric states for the full-size restore (10000)")
    parser.add_argument("--batch", type=int, default=250, help="keys per load_many in the full-size restore")
    parser.add_argument("--only-restore", action="store_true", help="only the full-size restore")
    args = parser.parse_args()
    if args.only_restore:
        asyncio.run(full_size_restore(Settings().redis, args.states, args.batch))
        return
    events = synthetic(args.events, args.entities, metric_share=args.metric_share)
    print(f"{args.events} events over {args.entities} services, {args.metric_share:.0%} metric points; "
          "targets: >= 20,000 events/s on one worker, "
          "restore < 10 s with 10k entities")
    in_process(events)
    if not args.skip_kafka:
        kafka(events, args.restore_entities)
    asyncio.run(full_size_restore(Settings().redis, args.states, args.batch))


if __name__ == "__main__":
    main()
