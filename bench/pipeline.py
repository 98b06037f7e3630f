"""The whole pipeline as a user runs it: ``seismo simulate`` → ``seismo ingest`` → ``seismo worker``.

Three figures, each on fresh topics (a unique topic prefix and app id) of the
broker and Redis Seismo is configured with (``seismo kafka start`` / ``seismo redis
start`` or ``SEISMO_KAFKA_BOOTSTRAP`` / ``SEISMO_REDIS_URL``):

1. **backlog** — ``--events`` simulated events (default 200,000) are ingested into
   ``seismo.events.raw``, then ``seismo worker`` (``--processes`` per step) starts.
   Per step: events/s = its input events / (time from the worker's start until its
   consumer group committed the end of its input).  Overall: raw events / time until
   every step is done; below it the same from the first enriched event on (start-up left
   out).  Beside it, in the same run and on the same backlog, a bare
   confluent-kafka **passthrough** (consume raw → produce the same bytes, commit) is the
   ceiling no step can beat.  Then each step alone (``seismo worker --role STEP``) on the same
   backlog with a fresh group and state: its capacity with the machine to itself
   (``--skip-solo`` leaves it out).
2. **latency** — a steady load at ``--rate`` events/s for ``--seconds`` (default 5,000/s
   for 60 s) into a running worker: background logs and metrics of 40 services, plus one
   error every ``--error-every`` events, in bursts that hit one of 20 other services at a
   time; for every error that an incident update lists as evidence, the time from
   producing it to that update appearing on ``seismo.incidents`` (p50/p99/max).
3. **memory** — peak RSS (VmHWM) of every worker process at the end of each part.

Usage: python bench/pipeline.py [--events 200000] [--processes 1] [--rate 5000] [--seconds 60]
       [--skip-backlog] [--skip-latency] [--skip-solo] [--keep]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from schemas.codec import codec_for
from schemas.models import Event, Incident
from seismo.local.process import child_pids
from seismo.settings import Settings

STEPS = {"normalize": "events.raw", "correlate": "events.enriched", "score": "events.enriched"}


class Run:
    """One isolated deployment on the shared broker: its own topics, groups and Redis hash."""

    def __init__(self, label: str) -> None:
        self.run = f"bench-{label}-{uuid.uuid4().hex[:8]}"
        base = Settings()
        self.bootstrap = base.bootstrap
        self.redis = base.redis
        self.env = {
            **os.environ, "SEISMO_TOPIC_PREFIX": f"{self.run}.", "SEISMO_APP_ID": self.run,
            "SEISMO_LOG_LEVEL": "WARNING", "SEISMO_KAFKA_BOOTSTRAP": self.bootstrap,
        }
        self.logdir = Path(tempfile.mkdtemp(prefix=f"{self.run}-"))
        self._probes: dict[str, Consumer] = {}

    def topic(self, name: str) -> str:
        return f"{self.run}.seismo.{name}"

    def seismo(self, *args: str) -> None:
        subprocess.run([sys.executable, "-m", "seismo", *args], env=self.env, check=True,
                       stdout=subprocess.DEVNULL)

    def spawn_worker(self, processes: int) -> subprocess.Popen[bytes]:
        log = open(self.logdir / "worker.log", "ab")  # noqa: SIM115 - lives as long as the worker
        return subprocess.Popen(
            [sys.executable, "-m", "seismo", "worker", "--processes", str(processes)],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )

    def progress(self, group: str, topic: str) -> tuple[int, int]:
        """(offsets ``group`` committed on ``topic``, the topic's end), summed over partitions.

        One client per group, kept for the run (it never subscribes, so it never joins the
        group): a new client per question cost a connection each time, and the time between
        two looks was how late a finished step was seen."""
        c = self._probes.get(group)
        if c is None:
            c = self._probes[group] = Consumer(
                {"bootstrap.servers": self.bootstrap, "group.id": group, "enable.auto.commit": False})
        meta = c.list_topics(topic, timeout=10).topics[topic]
        tps = [TopicPartition(topic, p) for p in sorted(meta.partitions)]
        done = sum(max(tp.offset, 0) for tp in c.committed(tps, timeout=10))
        return done, sum(c.get_watermark_offsets(tp, timeout=10, cached=False)[1] for tp in tps)

    def close_probes(self) -> None:
        for c in self._probes.values():
            c.close()
        self._probes.clear()

    def cleanup(self) -> None:
        self.close_probes()
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        topics = [t for t in admin.list_topics(timeout=10).topics if t.startswith(f"{self.run}.")]
        if topics:
            for fut in admin.delete_topics(topics).values():
                fut.result()
        import redis

        client = redis.Redis.from_url(self.redis)
        try:
            for key in client.scan_iter(f"seismo:{self.run}*"):
                client.delete(key)
        finally:
            client.close()


def rss_mb(root: int) -> dict[str, float]:
    """Peak RSS (VmHWM) in MB of ``root`` and its children, by command role."""
    out: dict[str, float] = {}
    for pid in [root, *child_pids(root)]:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        hwm = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM")), 0)
        role = argv[argv.index(b"--role") + 1].decode() if b"--role" in argv else "supervisor"
        index = argv[argv.index(b"--index") + 1].decode() if b"--index" in argv else "0"
        out[f"{role}#{index}"] = hwm / 1024
    return out


def cpu_s(root: int) -> dict[str, float]:
    """CPU seconds (user + system) so far of ``root`` and its children, by command role."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for pid in [root, *child_pids(root)]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        role = argv[argv.index(b"--role") + 1].decode() if b"--role" in argv else "supervisor"
        index = argv[argv.index(b"--index") + 1].decode() if b"--index" in argv else "0"
        out[f"{role}#{index}"] = (int(fields[11]) + int(fields[12])) / tick
    return out


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- part 1: backlog ----------------------------------------------------------------------------
def simulate(n: int, workdir: Path) -> Path:
    services = max(12, n // 4000)
    minutes = max(60, int(n / services / 4.5))
    events, truth = workdir / "events.jsonl", workdir / "truth.json"
    subprocess.run(
        [sys.executable, "-m", "seismo", "simulate", "--out", str(events), "--truth", str(truth),
         "--services", str(services), "--incidents", str(max(4, services // 3)),
         "--duration-minutes", str(minutes), "--seed", "7"],
        check=True, stdout=subprocess.DEVNULL,
    )
    lines = events.read_text().splitlines()
    if len(lines) < n:
        print(f"simulate gave {len(lines)} events (asked {n}); using them all", file=sys.stderr)
    cut = workdir / "backlog.jsonl"
    cut.write_text("\n".join(lines[:n]) + "\n")
    return cut


def passthrough(run: Run, total: int) -> float:
    """Seconds for a bare consume → produce-same-bytes → commit loop over the raw backlog."""
    consumer = Consumer({
        "bootstrap.servers": run.bootstrap, "group.id": f"{run.run}-passthrough",
        "enable.auto.commit": False, "auto.offset.reset": "earliest", "fetch.wait.max.ms": 100,
    })
    producer = Producer({"bootstrap.servers": run.bootstrap, "enable.idempotence": True, "acks": "all",
                         "linger.ms": 20, "compression.type": "lz4"})
    out = run.topic("passthrough")
    consumer.subscribe([run.topic("events.raw")])
    seen, started = 0, time.monotonic()
    while seen < total:
        batch = consumer.consume(1000, timeout=0.5)
        for m in batch:
            if m.error() is None:
                while True:
                    try:
                        producer.produce(out, m.value(), m.key())
                        break
                    except BufferError:
                        producer.poll(0.1)
                seen += 1
        producer.poll(0)
        if batch:
            producer.flush()
            consumer.commit(asynchronous=False)
    elapsed = time.monotonic() - started
    consumer.close()
    return elapsed


def backlog(n: int, processes: int, keep: bool, solo_steps: bool = True) -> None:
    run = Run("backlog")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = simulate(n, Path(tmp))
            total = sum(1 for _ in path.open())
            t0 = time.monotonic()
            run.seismo("ingest", str(path))
            print(f"ingested {total:,} events in {time.monotonic() - t0:.1f}s")
        ceiling = passthrough(run, total)
        worker = run.spawn_worker(processes)
        started = time.monotonic()
        done: dict[str, float] = {}
        first_out: float | None = None  # start-up: until normalize's first enriched event
        peak: dict[str, float] = {}
        cpu: dict[str, float] = {}
        try:
            while len(done) < len(STEPS):
                if worker.poll() is not None:
                    raise SystemExit(f"the worker exited with {worker.returncode}; log in {run.logdir}")
                for step, topic in STEPS.items():
                    if step not in done:
                        committed, end = run.progress(f"{run.run}-{step}", run.topic(topic))
                        if topic == "events.enriched" and end > 0 and first_out is None:
                            first_out = time.monotonic() - started
                        if committed >= end >= total:
                            done[step] = time.monotonic() - started
                peak = rss_mb(worker.pid) or peak
                cpu = cpu_s(worker.pid) or cpu
                time.sleep(0.1)
        finally:
            stop(worker)
        enriched = run.progress(f"{run.run}-correlate", run.topic("events.enriched"))[1]
        print(f"\nbacklog: {total:,} events, seismo worker --processes {processes}")
        print(f"  {'passthrough (ceiling)':24} {total / ceiling:>10,.0f} events/s  ({ceiling:.1f}s)")
        for step, topic in STEPS.items():
            count = total if topic == "events.raw" else enriched
            print(f"  {step:24} {count / done[step]:>10,.0f} events/s  (done after {done[step]:.1f}s)")
        overall = max(done.values())
        print(f"  {'end to end':24} {total / overall:>10,.0f} events/s  "
              f"({total / overall / (total / ceiling):.2f}x the passthrough)")
        if first_out is not None and overall > first_out:
            print(f"  {'  after start-up':24} {total / (overall - first_out):>10,.0f} events/s  "
                  f"(the first enriched event came {first_out:.1f}s after the worker started)")
        print("  peak RSS: " + ", ".join(f"{k} {v:,.0f} MB" for k, v in sorted(peak.items())))
        print("  CPU per event: " + ", ".join(
            f"{k} {v / total * 1e6:,.0f} µs" for k, v in sorted(cpu.items()) if k != "supervisor#0"))
        if solo_steps:
            solo(run, total, enriched)
    finally:
        if not keep:
            run.cleanup()


def solo(run: Run, total: int, enriched: int) -> None:
    """Each step alone (``seismo worker --role STEP``, one process) on the backlog the pipeline
    left, with a fresh app id: its own group, state and embedding cache, so as cold as the
    pipeline's.  The step's capacity on one core with the machine to itself, start-up included.
    Normalize runs last: its outputs would lengthen the others' input."""
    print("  each step alone on the same backlog (seismo worker --role STEP, fresh group and state):")
    for step in ("score", "correlate", "normalize"):
        topic = STEPS[step]
        app = f"{run.run}-solo-{step}"
        count = total if topic == "events.raw" else enriched
        log = open(run.logdir / f"solo-{step}.log", "ab")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            [sys.executable, "-m", "seismo", "worker", "--role", step],
            env={**run.env, "SEISMO_APP_ID": app}, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        started = time.monotonic()
        cpu: dict[str, float] = {}
        try:
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"seismo worker --role {step} exited with {proc.returncode}; "
                                     f"log in {run.logdir}")
                committed, end = run.progress(f"{app}-{step}", run.topic(topic))
                cpu = cpu_s(proc.pid) or cpu
                if committed >= end >= count:
                    break
                time.sleep(0.1)
            elapsed = time.monotonic() - started
        finally:
            stop(proc)
            log.close()
        used = sum(cpu.values())
        print(f"    {step:22} {count / elapsed:>10,.0f} events/s  ({count:,} events in {elapsed:.1f}s, "
              f"CPU {used / count * 1e6:,.0f} µs/event)")


# -- part 2: latency ----------------------------------------------------------------------------
def latency(rate: int, seconds: int, every: int, processes: int, keep: bool) -> None:
    run = Run("latency")
    run.seismo("worker", "--help")  # warm imports' page cache
    worker = run.spawn_worker(processes)
    produced: dict[str, float] = {}
    seen: dict[str, float] = {}
    enriched: dict[str, float] = {}
    stop_reader = threading.Event()
    readers = [threading.Thread(target=_read_incidents, args=(run, seen, stop_reader), daemon=True),
               threading.Thread(target=_read_enriched, args=(run, enriched, stop_reader), daemon=True)]
    peak: dict[str, float] = {}
    try:
        _wait_groups(run, worker)
        for reader in readers:
            reader.start()
        codec = codec_for("event")
        producer = Producer({"bootstrap.servers": run.bootstrap, "enable.idempotence": True,
                             "acks": "all", "linger.ms": 5, "compression.type": "lz4"})
        raw = run.topic("events.raw")
        t0 = datetime.now(UTC)
        started = time.monotonic()
        total = rate * seconds
        for i in range(total):
            due = started + i / rate
            while (lag := due - time.monotonic()) > 0:
                time.sleep(min(lag, 0.005))
            ev = _event(i, every, t0, rate)
            while True:
                try:
                    producer.produce(raw, codec.encode(ev.to_avro()), ev.service.encode())
                    break
                except BufferError:
                    producer.poll(0.05)
            if ev.severity == "error":
                produced[ev.id] = time.monotonic()
            if i % 500 == 0:
                producer.poll(0)
                peak = rss_mb(worker.pid) or peak
        producer.flush()
        achieved = total / (time.monotonic() - started)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not produced.keys() <= seen.keys():
            time.sleep(0.2)
        peak = rss_mb(worker.pid) or peak
    finally:
        stop_reader.set()
        stop(worker)
        if not keep:
            run.cleanup()
    delays = sorted(seen[k] - t for k, t in produced.items() if k in seen)
    missing = len(produced) - len(delays)
    print(f"\nlatency: {achieved:,.0f} events/s offered for {seconds}s (asked {rate:,}), "
          f"{len(produced):,} errors, {len(delays):,} of them listed in an incident update")
    if delays:
        print(f"  produce → incident on seismo.incidents: p50 {_q(delays, 0.5) * 1000:,.0f} ms, "
              f"p99 {_q(delays, 0.99) * 1000:,.0f} ms, max {delays[-1] * 1000:,.0f} ms"
              + (f"; {missing} not listed as evidence within 60 s" if missing else ""))
    normalized = sorted(enriched[k] - t for k, t in produced.items() if k in enriched)
    if normalized:
        print(f"  of which produce → on seismo.events.enriched: p50 {_q(normalized, 0.5) * 1000:,.0f} ms, "
              f"p99 {_q(normalized, 0.99) * 1000:,.0f} ms")
    print("  peak RSS: " + ", ".join(f"{k} {v:,.0f} MB" for k, v in sorted(peak.items())))


def _q(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


def _event(i: int, every: int, t0: datetime, rate: int) -> Event:
    ts = t0 + timedelta(seconds=i / rate)  # event time keeps pace with the clock, as live sources do
    if i % every == every - 1:  # bursts of errors, one of 20 services at a time
        svc = f"lat-{(i // (every * 5)) % 20}"
        return Event(id=f"lat-{i}", source="kubernetes", kind="log", timestamp=ts, service=svc,
                     severity="error", message=f"payment {i} failed: upstream timeout after 3000 ms")
    svc = f"svc-{i % 40}"
    if i % 4 == 0:
        return Event(id=f"m-{i}", source="cloudwatch", kind="metric", timestamp=ts, service=svc,
                     severity="info", message="latency_ms",
                     metric={"name": "latency_ms", "value": 100.0 + i % 7})
    return Event(id=f"l-{i}", source="kubernetes", kind="log", timestamp=ts, service=svc, severity="info",
                 message=f"GET /api/orders/{i % 997} 200 in {i % 90} ms")


def _wait_groups(run: Run, worker: subprocess.Popen[bytes]) -> None:
    """Until every step's consumer group has a member (the worker is ready to consume)."""
    admin = AdminClient({"bootstrap.servers": run.bootstrap})
    deadline = time.monotonic() + 120
    groups = [f"{run.run}-{s}" for s in STEPS]
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise SystemExit(f"the worker exited with {worker.returncode}; log in {run.logdir}")
        try:
            described = admin.describe_consumer_groups(groups)
            if all(f.result(timeout=5).members for f in described.values()):
                return
        except Exception:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the worker's groups did not form in 120 s; log in {run.logdir}")


def _read_incidents(run: Run, seen: dict[str, float], stop_reader: threading.Event) -> None:
    """When each event id was first listed as evidence of an incident update."""

    def ids(value: bytes) -> list[str]:
        inc: Any = Incident.from_avro(codec_for("incident").decode(value))
        return [ref.event_id for ref in inc.evidence]

    _follow(run, "incidents", ids, seen, stop_reader)


def _read_enriched(run: Run, seen: dict[str, float], stop_reader: threading.Event) -> None:
    """When each error event reached seismo.events.enriched (the normalize step's share)."""

    def ids(value: bytes) -> list[str]:
        record = codec_for("event").decode_plain(value)
        return [str(record["id"])] if record["severity"] == "error" else []

    _follow(run, "events.enriched", ids, seen, stop_reader)


def _follow(run: Run, topic: str, ids: Any, seen: dict[str, float], stop_reader: threading.Event) -> None:
    consumer = Consumer({"bootstrap.servers": run.bootstrap, "group.id": f"{run.run}-reader-{topic}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "fetch.wait.max.ms": 10})
    consumer.subscribe([run.topic(topic)])
    while not stop_reader.is_set():
        for m in consumer.consume(500, timeout=0.1):
            if m.error() is None and m.value():
                now = time.monotonic()
                for event_id in ids(m.value()):
                    seen.setdefault(event_id, now)
    consumer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000, help="backlog size (default 200000)")
    parser.add_argument("--processes", type=int, default=1, help="seismo worker --processes (default 1)")
    parser.add_argument("--rate", type=int, default=5000, help="steady load, events/s (default 5000)")
    parser.add_argument("--seconds", type=int, default=60, help="steady load duration (default 60)")
    parser.add_argument("--error-every", type=int, default=100,
                        help="one incident-opening error every N events of the steady load (default 100)")
    parser.add_argument("--skip-backlog", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-solo", action="store_true",
                        help="do not also run each step alone on the backlog (its own capacity)")
    parser.add_argument("--keep", action="store_true", help="keep the bench's topics and Redis keys")
    args = parser.parse_args()
    print(f"seismo pipeline bench on {os.cpu_count()} cores, broker {Settings().bootstrap}")
    if not args.skip_backlog:
        backlog(args.events, args.processes, args.keep, solo_steps=not args.skip_solo)
    if not args.skip_latency:
        latency(args.rate, args.seconds, args.error_every, args.processes, args.keep)


if __name__ == "__main__":
    main()
