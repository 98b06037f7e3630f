"""Issue #9 item 1: one stream runtime — the score loop on confluent-kafka, sentry-arroyo, quixstreams, faust.

N enriched events (Avro, keyed by service, ``--entities`` services, a quarter of them
metric points, event time 10 ms apart) are published to a fresh uuid-named input topic
with 4 partitions.  Then each runtime variant runs in a child process of its own, with
a fresh consumer group and a fresh 4-partition output topic, for two workloads:

* **passthrough**: consume, produce the same key and value bytes;
* **score**: ``AvroCodec.decode_plain`` → ``Observation.from_record`` →
  ``Scorer.apply`` on a state dict in process memory → anomalies encoded and produced
  (key = service).  No Redis and no dead-lettering in any variant.

Measured per run, by this (parent) process polling the broker every 0.1 s: wall time
from starting the child until the group's committed offsets reach the end of the input
*and* the output topic holds every expected record (N for passthrough; for score the
anomaly count of the same scorer run in process beforehand).  ``events/s`` is N over
that wall time (start-up and group join included); ``proc ev/s`` is N over the time
from the child's first processed message to done, which leaves start-up out.  Peak RSS
is the sum of VmHWM over the child's process tree just before it is stopped (SIGTERM).

Variants (each skipped with a message when its package does not import):

1. ``confluent``: hand-written batch loop like ``stream_processors/score/adapter.py``
   (``consume(500)`` → work → produce; every ``--commit-interval`` or when a fetch
   comes back short: flush → commit);
2. ``arroyo``: ``StreamProcessor`` + ``RunTask`` → ``Unfold`` → ``Produce`` →
   ``CommitOffsets``; ``arroyo-mp2``: the same with ``RunTaskWithMultiprocessing``
   on 2 processes (state dicts are per process, so scoring there is not the real
   semantics: a service's events go to whichever process gets the batch);
3. ``quix``: ``Application`` + ``sdf.apply(expand=True)`` + ``to_topic``, state in a
   process dict; ``quix-state``: the state in quixstreams' own store (RocksDB + changelog
   topic; the ``ServiceScore`` pickled on every ``state.set``);
4. ``faust``: a faust-streaming agent over ``stream.events()`` like the project's.

sentry-arroyo needs confluent-kafka ≥ 2.13.2 and quixstreams < 2.13, so they live in
separate environments: ``--quix-python`` names the interpreter for the quix variants
(default: this one).  The commit interval of every variant is ``--commit-interval``.

Needs the broker of ``seismo kafka start`` (or ``--bootstrap``).  Deletes its topics
and consumer groups at the end.

Usage: python bench/runtime_spike.py [--events 100000] [--variants confluent,arroyo,...]
       [--workloads passthrough,score] [--quix-python PYTHON] [--bootstrap HOST:PORT]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pickle
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from schemas.codec import codec_for
from schemas.models import Event
from stream_processors.score.observation import Observation
from stream_processors.score.scorer import Scorer

T0 = datetime(2024, 6, 3, tzinfo=UTC)
TEMPLATES = ("GET /api/<*> 200 in <NUM>ms", "cache miss for key <HEX>", "worker <NUM> heartbeat")
PARTITIONS = 4
# The project's KafkaPublisher settings, for every variant's producer.
PRODUCER = {"acks": "all", "enable.idempotence": True, "linger.ms": 20, "compression.type": "lz4"}
VARIANTS = {  # name -> module it needs
    "confluent": "confluent_kafka", "arroyo": "arroyo", "arroyo-mp2": "arroyo",
    "quix": "quixstreams", "quix-state": "quixstreams", "faust": "faust",
}
Work = Callable[[bytes], list[bytes]]


# --- input and work ------------------------------------------------------------------------

def synthetic(n: int, entities: int, seed: int = 7) -> list[Event]:
    """Enriched events as the normalizer emits them (same shape as bench/score_throughput.py)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        svc, ts = f"svc-{rng.randrange(entities)}", T0 + timedelta(milliseconds=10 * i)
        if rng.random() < 0.25:
            out.append(Event(id=f"b-{i}", source="cloudwatch", kind="metric", timestamp=ts, service=svc,
                             severity="info", message="latency",
                             metric={"name": "latency_ms", "value": 100 + rng.gauss(0, 5)}))
        else:
            t = rng.randrange(len(TEMPLATES))
            out.append(Event(id=f"b-{i}", source="kubernetes", kind="log", timestamp=ts, service=svc,
                             severity="info", message=TEMPLATES[t], template_id=f"{svc}-t{t}",
                             template=TEMPLATES[t], novelty=0.1))
    return out


class ScoreWork:
    """The score step on one event: Avro bytes in, encoded anomalies out; state in a dict."""

    def __init__(self) -> None:
        self.codec, self.out = codec_for("event"), codec_for("anomaly")
        self.scorer, self.states = Scorer(), {}  # type: ignore[var-annotated]

    def __call__(self, value: bytes) -> list[bytes]:
        obs = Observation.from_record(self.codec.decode_plain(value))
        state = self.states.get(obs.service) or self.scorer.new_state(obs.service)
        state, found = self.scorer.apply(state, obs)
        self.states[obs.service] = state
        return [self.out.encode(a.to_avro()) for a in found]


def passthrough(value: bytes) -> list[bytes]:
    return [value]


def make_work(workload: str) -> Work:
    return ScoreWork() if workload == "score" else passthrough


_marked = False


def mark(path: str) -> None:
    """Record (once per run, across processes) the wall time of the first processed message."""
    global _marked
    if not _marked:
        _marked = True
        try:
            with open(path, "x") as fh:
                fh.write(repr(time.time()))
        except FileExistsError:
            pass


def stop_event() -> threading.Event:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return stop


# --- variants (each runs in a child process until SIGTERM) --------------------------------

def run_confluent(a: argparse.Namespace, work: Work) -> None:
    consumer = Consumer({"bootstrap.servers": a.bootstrap, "group.id": a.group, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "fetch.wait.max.ms": 100, "log_level": 3})
    producer = Producer({"bootstrap.servers": a.bootstrap, **PRODUCER, "log_level": 3})
    stop, offsets, last = stop_event(), {}, time.monotonic()

    def checkpoint() -> None:
        if offsets:
            if producer.flush(60):
                raise SystemExit("outputs not acknowledged")
            consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                            asynchronous=False)
            offsets.clear()

    consumer.subscribe([a.input], on_revoke=lambda c, p: checkpoint())
    while not stop.is_set():
        messages = consumer.consume(500, timeout=0.2)
        for m in messages:
            if m.error() is not None:
                continue
            mark(a.mark)
            for value in work(m.value()):
                while True:
                    try:
                        producer.produce(a.output, value, m.key())
                        break
                    except BufferError:
                        producer.poll(0.1)
            offsets[(m.topic(), m.partition())] = m.offset() + 1
        producer.poll(0)
        if len(messages) < 500 or time.monotonic() - last >= a.commit_interval:
            checkpoint()
            last = time.monotonic()
    checkpoint()
    consumer.close()


_work: Work | None = None
_mark_path = ""


def _init_worker(workload: str, mark_path: str) -> None:
    global _work, _mark_path
    _work, _mark_path = make_work(workload), mark_path


def _arroyo_task(message: Any) -> Any:
    """RunTask function (module-level: it is pickled into the multiprocessing pool)."""
    from arroyo.backends.kafka import KafkaPayload
    from arroyo.types import FILTERED_PAYLOAD

    assert _work is not None
    mark(_mark_path)
    payload = message.payload
    out = [KafkaPayload(payload.key, v, []) for v in _work(payload.value)]
    return out or FILTERED_PAYLOAD  # nothing to produce: the offset still reaches CommitOffsets


def run_arroyo(a: argparse.Namespace, processes: int) -> None:
    from arroyo.backends.kafka import KafkaConsumer, KafkaProducer
    from arroyo.backends.kafka.configuration import (
        build_kafka_configuration,
        build_kafka_consumer_configuration,
    )
    from arroyo.commit import CommitPolicy
    from arroyo.processing import StreamProcessor
    from arroyo.processing.strategies import (
        CommitOffsets,
        ProcessingStrategy,
        ProcessingStrategyFactory,
        Produce,
        RunTask,
        RunTaskWithMultiprocessing,
        Unfold,
    )
    from arroyo.processing.strategies.run_task_with_multiprocessing import MultiprocessingPool
    from arroyo.types import Topic, Value

    producer = KafkaProducer(build_kafka_configuration({}, [a.bootstrap], override_params=PRODUCER))
    pool = MultiprocessingPool(processes, partial(_init_worker, a.workload, a.mark)) if processes else None
    if pool is None:
        _init_worker(a.workload, a.mark)

    class Factory(ProcessingStrategyFactory[Any]):
        def create_with_partitions(self, commit: Any, partitions: Any) -> ProcessingStrategy[Any]:
            tail = Unfold(lambda payloads: [Value(p, {}) for p in payloads],
                          Produce(producer, Topic(a.output), CommitOffsets(commit)))
            if pool is None:
                return RunTask(_arroyo_task, tail)
            return RunTaskWithMultiprocessing(_arroyo_task, tail, max_batch_size=500, max_batch_time=0.2,
                                              pool=pool)

    consumer = KafkaConsumer(build_kafka_consumer_configuration(
        {}, a.group, auto_offset_reset="earliest", bootstrap_servers=[a.bootstrap],
        override_params={"fetch.wait.max.ms": 100, "log_level": 3},
        # arroyo >= 2.2x defaults to storing offsets for librdkafka's auto-commit (every 5 s);
        # explicit commits follow the CommitPolicy like every other variant.
        enable_auto_commit=False))
    processor = StreamProcessor(consumer, Topic(a.input), Factory(), CommitPolicy(a.commit_interval, None))
    signal.signal(signal.SIGTERM, lambda *_: processor.signal_shutdown())
    processor.run()
    if pool is not None:
        pool.close()
    producer.close().result()


def run_quix(a: argparse.Namespace, stateful: bool) -> None:
    from quixstreams import Application
    from quixstreams.state.rocksdb import RocksDBOptions

    work = make_work(a.workload)
    with tempfile.TemporaryDirectory() as state_dir:
        app = Application(
            broker_address=a.bootstrap, consumer_group=a.group, auto_offset_reset="earliest",
            commit_interval=a.commit_interval, state_dir=state_dir, loglevel="WARNING",
            processing_guarantee="at-least-once", producer_extra_config=dict(PRODUCER),
            consumer_extra_config={"fetch.wait.max.ms": 100},
            rocksdb_options=RocksDBOptions(dumps=pickle.dumps, loads=pickle.loads),  # type: ignore[arg-type]
        )
        source = app.topic(a.input, key_deserializer="bytes", value_deserializer="bytes")
        sink = app.topic(a.output, key_serializer="bytes", value_serializer="bytes")
        sdf = app.dataframe(source)
        if stateful and a.workload == "score":
            codec, out, scorer = codec_for("event"), codec_for("anomaly"), Scorer()

            def score(value: bytes, state: Any) -> list[bytes]:
                mark(a.mark)
                obs = Observation.from_record(codec.decode_plain(value))
                current = state.get("score") or scorer.new_state(obs.service)
                current, found = scorer.apply(current, obs)
                state.set("score", current)
                return [out.encode(x.to_avro()) for x in found]

            sdf = sdf.apply(score, stateful=True, expand=True)
        else:
            def apply(value: bytes) -> list[bytes]:
                mark(a.mark)
                return work(value)

            sdf = sdf.apply(apply, expand=True)
        sdf.to_topic(sink)
        app.run()


def run_faust(a: argparse.Namespace) -> None:
    import faust

    work = make_work(a.workload)
    raw: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw",
                           "value_serializer": "raw"}
    with tempfile.TemporaryDirectory() as datadir:
        app = faust.App(a.group, broker=f"kafka://{a.bootstrap}", store="memory://", datadir=datadir,
                        topic_disable_leader=True, web_enabled=False, consumer_auto_offset_reset="earliest",
                        producer_acks=-1, producer_linger=0.02, producer_compression_type="lz4",
                        broker_commit_interval=a.commit_interval)
        source, sink = app.topic(a.input, **raw), app.topic(a.output, **raw)

        async def agent(stream: Any) -> None:
            async for event in stream.events():
                mark(a.mark)
                for value in work(event.message.value):
                    await sink.send(key=event.message.key, value=value)

        app.agent(source, name="spike")(agent)
        faust.Worker(app, loglevel="WARNING", quiet=True).execute_from_commandline()


def run_worker(a: argparse.Namespace) -> None:
    if a.worker == "confluent":
        run_confluent(a, make_work(a.workload))
    elif a.worker.startswith("arroyo"):
        run_arroyo(a, 2 if a.worker == "arroyo-mp2" else 0)
    elif a.worker.startswith("quix"):
        run_quix(a, a.worker == "quix-state")
    else:
        run_faust(a)


# --- the parent: input, runs, measurement ---------------------------------------------------

def create_topics(admin: AdminClient, names: list[str]) -> None:
    for fut in admin.create_topics([NewTopic(n, PARTITIONS, 1) for n in names]).values():
        fut.result(30)


def publish(bootstrap: str, topic: str, events: list[Event]) -> None:
    codec, producer = codec_for("event"), Producer({"bootstrap.servers": bootstrap, **PRODUCER})
    for e in events:
        while True:
            try:
                producer.produce(topic, codec.encode(e.to_avro()), e.service.encode())
                break
            except BufferError:
                producer.poll(0.1)
    if producer.flush(60):
        raise SystemExit("input not acknowledged")


def expected_anomalies(events: list[Event]) -> int:
    codec, work = codec_for("event"), ScoreWork()
    return sum(len(work(codec.encode(e.to_avro()))) for e in events)


def tree_hwm_kib(pid: int) -> int:
    """Sum of VmHWM (peak resident set) over ``pid`` and its descendants, in KiB."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = {pid}, [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parents.items() if pp == p and c not in tree]
        tree.update(kids)
        frontier.extend(kids)
    total = 0
    for p in tree:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def measure(a: argparse.Namespace, python: str, variant: str, workload: str, input_topic: str, n: int,
            want: int, admin: AdminClient) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    output, group = f"spike-out-{variant}-{workload}-{tag}", f"spike-{variant}-{workload}-{tag}"
    create_topics(admin, [output])
    mark_path = Path(tempfile.gettempdir()) / f"{group}.first"
    monitor = Consumer({"bootstrap.servers": a.bootstrap, "group.id": group, "enable.auto.commit": False})
    tps_in = [TopicPartition(input_topic, p) for p in range(PARTITIONS)]
    cmd = [python, str(Path(__file__).resolve()), "--worker", variant, "--workload", workload, "--input",
           input_topic, "--output", output, "--group", group, "--mark", str(mark_path), "--bootstrap",
           a.bootstrap, "--commit-interval", str(a.commit_interval)]
    log = Path(tempfile.gettempdir()) / f"{group}.log"
    start = time.monotonic()
    start_wall = time.time()
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    result: dict[str, Any] = {"variant": variant, "workload": workload, "note": ""}
    done = 0.0
    committed_at = 0.0
    outputs = 0
    try:
        while time.monotonic() - start < a.timeout:
            if proc.poll() is not None:
                result["note"] = f"worker exited {proc.returncode}, see {log}"
                break
            committed = sum(max(tp.offset, 0) for tp in monitor.committed(tps_in, timeout=10))
            outputs = sum(monitor.get_watermark_offsets(TopicPartition(output, p), timeout=10)[1]
                          for p in range(PARTITIONS))
            now = time.monotonic()
            if committed >= n and not committed_at:
                committed_at = now
            if committed >= n and outputs >= want:
                done = now
                break
            if committed_at and now - committed_at > 15:
                result["note"] = f"committed all, but {outputs} of {want} outputs after 15 s"
                done = committed_at
                break
            time.sleep(0.1)
        else:
            result["note"] = f"timed out after {a.timeout:.0f} s"
        result["rss_mib"] = tree_hwm_kib(proc.pid) / 1024
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        monitor.close()
    if done:
        wall = done - start
        result["wall_s"], result["eps"] = wall, n / wall
        if mark_path.exists():
            first = float(mark_path.read_text()) - start_wall
            result["startup_s"], result["proc_eps"] = first, n / max(wall - first, 1e-9)
        if outputs > want:
            result["note"] = (result["note"] + f" {outputs - want} extra outputs").strip()
    mark_path.unlink(missing_ok=True)
    for fut in admin.delete_topics([output]).values():
        fut.result(30)
    changelogs = [t for t in admin.list_topics(timeout=10).topics if group in t]
    if changelogs:
        admin.delete_topics(changelogs)
    admin.delete_consumer_groups([group])
    if not result["note"]:
        log.unlink(missing_ok=True)
    return result


def available(python: str, module: str) -> bool:
    if python == sys.executable:
        return importlib.util.find_spec(module) is not None
    return subprocess.run([python, "-c", f"import {module}"], capture_output=True).returncode == 0


def report(results: list[dict[str, Any]]) -> None:
    base = {r["workload"]: r.get("eps") for r in results if r["variant"] == "confluent"}
    print(f"\n{'variant':12s} {'workload':12s} {'events/s':>9s} {'ratio':>6s} {'proc ev/s':>9s} "
          f"{'start s':>7s} {'peak RSS MiB':>12s}  note")
    for r in results:
        eps, ref = r.get("eps"), base.get(r["workload"])
        ratio = f"{eps / ref:6.2f}" if eps and ref else f"{'-':>6s}"
        print(f"{r['variant']:12s} {r['workload']:12s} {eps or 0:9,.0f} {ratio} {r.get('proc_eps', 0):9,.0f} "
              f"{r.get('startup_s', 0):7.1f} {r.get('rss_mib', 0):12,.0f}  {r['note']}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=100_000, help="events to publish (default 100000)")
    p.add_argument("--entities", type=int, default=1000, help="services the events spread over")
    p.add_argument("--bootstrap", default=os.environ.get("SEISMO_KAFKA_BOOTSTRAP", "127.0.0.1:29092"))
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, default all")
    p.add_argument("--workloads", default="passthrough,score", help="comma-separated")
    p.add_argument("--quix-python", default=sys.executable, help="interpreter with quixstreams installed")
    p.add_argument("--commit-interval", type=float, default=0.5, help="seconds between commits (all)")
    p.add_argument("--timeout", type=float, default=600, help="seconds per run before giving up")
    for hidden in ("--worker", "--workload", "--input", "--output", "--group", "--mark"):
        p.add_argument(hidden, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        run_worker(a)
        return
    variants = [v for v in a.variants.split(",") if v]
    unknown = set(variants) - VARIANTS.keys()
    if unknown:
        p.error(f"unknown variants {sorted(unknown)}; known: {', '.join(VARIANTS)}")
    runnable = []
    for v in variants:
        python = a.quix_python if v.startswith("quix") else sys.executable
        if available(python, VARIANTS[v]):
            runnable.append((v, python))
        else:
            print(f"skipping {v}: {VARIANTS[v]} does not import in {python}", flush=True)
    events = synthetic(a.events, a.entities)
    want = {"passthrough": a.events, "score": expected_anomalies(events)}
    admin = AdminClient({"bootstrap.servers": a.bootstrap})
    input_topic = f"spike-in-{uuid.uuid4().hex[:8]}"
    create_topics(admin, [input_topic])
    results = []
    try:
        publish(a.bootstrap, input_topic, events)
        print(f"{a.events} events on {input_topic} ({PARTITIONS} partitions), "
              f"{want['score']} anomalies expected from score", flush=True)
        for v, python in runnable:
            for w in a.workloads.split(","):
                if v == "quix-state" and w != "score":
                    continue  # without the scorer's state there is nothing to keep in the store
                r = measure(a, python, v, w, input_topic, a.events, want[w], admin)
                print(f"  {v} {w}: {r.get('eps', 0):,.0f} events/s {r['note']}", flush=True)
                results.append(r)
    finally:
        admin.delete_topics([input_topic])
    report(results)


if __name__ == "__main__":
    main()
