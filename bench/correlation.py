"""Correlation quality on simulated estates, through the real pipeline, tuning and held-out seeds apart.

    .venv/bin/python bench/correlation.py                      # tuning seeds 1-3, held-out 101-105
    .venv/bin/python bench/correlation.py --baseline           # + the skeleton rule on the same events
    .venv/bin/python bench/correlation.py --in-process         # the correlate step alone, no broker
    .venv/bin/python bench/correlation.py --in-process --lag-weight 0.15   # the ranker with the lag test on

Per seed: ``seismo simulate`` (12 services, 12 faults over 3 hours: cascades through callers,
spans with trace ids, deploys and config changes, overlapping faults, stray errors) →
``seismo ingest`` → ``seismo worker`` (normalize, score, correlate: exactly as a user runs
them, on topics and a namespace of its own) → the incidents topic read back → scored
against the ground truth (``bench/correlation_metrics.py``: pairwise grouping P/R/F1
over signal events, RCA@1/@3, event-time onset → open delay, noise share).  The topics,
consumer groups and Redis keys of each run are deleted afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from bench.correlation_inproc import run_adapter, run_baseline
from bench.correlation_metrics import pooled, score
from producers.simulate import simulate, write_simulation
from schemas.codec import codec_for
from schemas.models import Incident
from seismo.settings import Settings

TUNING = (1, 2, 3)
HELD_OUT = (101, 102, 103, 104, 105)


def _committed(bootstrap: str, group: str, topic: str) -> tuple[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        meta = c.list_topics(topic, timeout=10).topics[topic]
        tps = [TopicPartition(topic, p) for p in sorted(meta.partitions)]
        done = sum(max(tp.offset, 0) for tp in c.committed(tps, timeout=10))
        return done, sum(c.get_watermark_offsets(tp, timeout=10)[1] for tp in tps)
    finally:
        c.close()


def _read(bootstrap: str, topic: str) -> list[Incident]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    latest: dict[bytes, Incident] = {}
    decode = codec_for("incident").decode
    try:
        meta = c.list_topics(topic, timeout=10).topics[topic]
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in meta.partitions}
        c.assign([TopicPartition(topic, p, 0) for p in meta.partitions])
        seen = {p: 0 for p in ends}
        deadline = time.monotonic() + 60
        while any(seen[p] < ends[p] for p in ends) and time.monotonic() < deadline:
            for m in c.consume(1000, timeout=1.0):
                if m.error() is None:
                    seen[m.partition() or 0] = (m.offset() or 0) + 1
                    if m.key() is not None and m.value() is not None:
                        latest[m.key()] = Incident.from_avro(decode(m.value()))
    finally:
        c.close()
    return list(latest.values())


def through_pipeline(events_path: Path, total: int, timeout: float) -> tuple[list[Incident], float]:
    """Ingest the file and run the worker until every step read everything; (incidents, seconds)."""
    run = uuid.uuid4().hex[:8]
    env = {**os.environ, "SEISMO_TOPIC_PREFIX": f"bench-{run}.", "SEISMO_APP_ID": f"bench-{run}",
           "SEISMO_LOG_LEVEL": "WARNING", "SEISMO_MAX_EVIDENCE": "2000"}
    settings = Settings(topic_prefix=f"bench-{run}.", app_id=f"bench-{run}")
    bootstrap, prefix, group = settings.bootstrap, f"bench-{run}.seismo.", f"bench-{run}"
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "seismo", "ingest", str(events_path)], env=env, check=True,
                   capture_output=True)
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in finally) not a pipe: an unread pipe blocks
    worker = subprocess.Popen([sys.executable, "-m", "seismo", "worker"], env=env,
                              stdout=subprocess.DEVNULL, stderr=log)
    checks = [("normalize", "events.raw"), ("score", "events.enriched"), ("correlate", "events.enriched"),
              ("correlate", "anomalies"), ("correlate", "signals")]
    try:
        deadline = time.monotonic() + timeout
        while True:
            if worker.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"the worker exited: {log.read().decode(errors='replace')[-2000:]}")
            try:
                states = [_committed(bootstrap, f"{group}-{step}", prefix + topic) for step, topic in checks]
            except Exception:  # topics not created yet
                states = [(0, 1)]
            if states[0][0] >= total and all(d == e for d, e in states):
                break
            if time.monotonic() > deadline:
                log.seek(0)
                tail = log.read().decode(errors="replace")[-2000:]
                raise TimeoutError(f"pipeline not done after {timeout:.0f} s: {states}\n{tail}")
            time.sleep(1.0)
        elapsed = time.monotonic() - started
        return _read(bootstrap, prefix + "incidents"), elapsed
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(60)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()
        _clean(bootstrap, prefix, group, settings)


def _clean(bootstrap: str, prefix: str, group: str, settings: Settings) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
    if topics:
        for f in admin.delete_topics(topics, operation_timeout=30).values():
            f.result()
    groups = [f"{group}-{s}" for s in ("normalize", "score", "correlate")]
    for f in admin.delete_consumer_groups(groups, request_timeout=30).values():
        with contextlib.suppress(Exception):  # a group that never committed does not exist
            f.result()
    try:
        import redis

        client = redis.Redis.from_url(settings.redis)
        for key in client.scan_iter(match=f"seismo:{settings.namespace}:*"):
            client.delete(key)
    except Exception as exc:  # Redis is optional for the figures
        print(f"  (redis clean-up skipped: {exc})", file=sys.stderr)


def one_seed(seed: int, args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any] | None]:
    events, truth = simulate(args.services, args.incidents, seed, duration=timedelta(hours=args.hours))
    truth_doc = truth.to_json()
    if args.in_process:
        incidents, spent = run_adapter(events)
        how = f"in process, {spent / len(events) * 1e6:.1f} µs/event in the step"
    else:
        with tempfile.TemporaryDirectory() as tmp:
            out, truth_path = Path(tmp) / "events.jsonl", Path(tmp) / "truth.json"
            write_simulation(events, truth, out, truth_path)
            incidents, elapsed = through_pipeline(out, len(events), args.timeout)
        how = f"pipeline {elapsed:.0f} s"
    if args.dump:
        args.dump.mkdir(parents=True, exist_ok=True)
        (args.dump / f"incidents-{seed}.json").write_text(
            json.dumps([i.model_dump(mode="json") for i in incidents], indent=1))
    result = score(events, truth_doc, incidents)
    baseline = score(events, truth_doc, run_baseline(events)) if args.baseline else None
    print(f"  seed {seed}: {len(events)} events, {result['injected']} faults, {how}: {_line(result)}",
          flush=True)
    if baseline is not None:
        print(f"           skeleton rule: {_line(baseline)}", flush=True)
    return result, baseline


def _line(r: dict[str, Any]) -> str:
    return (f"P {r['precision']:.3f} R {r['recall']:.3f} F1 {r['f1']:.3f} | RCA@1 {r['rca1']:.3f} "
            f"RCA@3 {r['rca3']:.3f} | onset→open p50 {r['delay_p50']:.0f} s p95 {r['delay_p95']:.0f} s "
            f"(from first warning p95 {r['early_p95']:.0f} s) | "
            f"noise {r['noise']:.1%} of {r['incidents']} incidents")


def run_split(name: str, seeds: Sequence[int], args: argparse.Namespace) -> dict[str, Any]:
    print(f"{name} seeds {', '.join(map(str, seeds))}:", flush=True)
    results = [one_seed(s, args) for s in seeds]
    ours = pooled([r for r, _ in results])
    print(f"{name.upper()} correlator: {_line(ours)} ({ours['injected']} injected faults)", flush=True)
    if args.baseline:
        skeleton = pooled([b for _, b in results if b is not None])
        print(f"{name.upper()} skeleton:   {_line(skeleton)}", flush=True)
    return ours


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tuning", type=int, nargs="*", default=list(TUNING))
    parser.add_argument("--held-out", type=int, nargs="*", default=list(HELD_OUT))
    parser.add_argument("--services", type=int, default=12)
    parser.add_argument("--incidents", type=int, default=12)
    parser.add_argument("--hours", type=float, default=3.0)
    parser.add_argument("--baseline", action="store_true", help="also score the skeleton rule (in process)")
    parser.add_argument("--in-process", action="store_true", help="the correlate step alone, no broker")
    parser.add_argument("--lag-weight", type=float, default=None,
                        help="weight of the lag test in the root-cause score (in process only; shipped: 0)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per seed in the pipeline")
    parser.add_argument("--json", type=Path, help="write the pooled figures here")
    parser.add_argument("--dump", type=Path, help="write each seed's incidents here (incidents-SEED.json)")
    args = parser.parse_args(argv)
    if args.lag_weight is not None:
        if not args.in_process:
            parser.error("--lag-weight changes the ranker of this process: use it with --in-process")
        from stream_processors.correlate import rank

        rank.WEIGHTS["lead"] = args.lag_weight
    figures = {}
    if args.tuning:
        figures["tuning"] = run_split("tuning", args.tuning, args)
    if args.held_out:
        figures["held_out"] = run_split("held-out", args.held_out, args)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
