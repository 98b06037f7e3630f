"""Throughput of ``seismo worker`` on clean input against the same input with poison, in one run.

Issue #13's target: 1% garbage, truncated Avro and 5 MB messages on every input topic a step
reads are all dead-lettered (``tests/chaos/test_poison_inputs.py`` checks that) and cost at
most 20% of the clean throughput.  This measures the second half; tests never time things.

Both runs use the chaos suite's workload (``tests/chaos/workload.py``, ``tests/chaos/poison.py``)
on fresh topics and a fresh namespace of the broker and Redis Seismo is configured with
(``seismo kafka start`` / ``seismo redis start``, or ``SEISMO_KAFKA_BOOTSTRAP`` /
``SEISMO_REDIS_URL``):

* **clean** — ``--events`` events published to ``seismo.events.raw``, then one worker starts;
* **dirty** — the same events with 1% poison among them on the raw topic (two of them 5 MB),
  and 1% of that count (two 5 MB) already waiting on every other input topic a step reads.

events/s = clean events / (worker start → every step committed the end of every topic it
reads).  The dirty run's clock covers the poison too, so the figure is what a user sees.

Usage: python bench/chaos_throughput.py [--events 100000] [--rounds 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the chaos suite's workload, as tested

from seismo.settings import Settings
from tests.chaos.poison import allow_large_messages, poison_only, publish_tracked, sprinkle
from tests.chaos.workload import backlog, encoded, new_env, publish, settled, step_inputs
from tests.kafka_utils import Env, stop

ORDER = ("normalize", "score", "correlate")  # each step after the steps that feed it


def timed_run(env: Env, timeout: float) -> float:
    """Seconds from the worker's start until every step committed the end of all of its inputs."""
    inputs = step_inputs(env)
    ordered = {step: inputs[step] for step in ORDER if step in inputs}
    started = time.monotonic()
    worker = env.spawn("worker", log_name="worker")
    try:
        while not settled(env, ordered):
            if worker.poll() is not None:
                raise SystemExit(f"the worker exited with {worker.returncode}:\n{env.log_tail('worker')}")
            if time.monotonic() - started > timeout:
                raise SystemExit(f"not done after {timeout:.0f}s:\n{env.log_tail('worker')}")
            time.sleep(0.2)
        return time.monotonic() - started
    finally:
        stop(worker)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=1, help="clean/dirty pairs, alternating")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    settings = Settings()
    broker, redis_url = settings.bootstrap, settings.redis
    records = encoded(backlog(args.events))
    rates: dict[str, list[float]] = {"clean": [], "dirty": []}
    with tempfile.TemporaryDirectory(prefix="seismo-chaos-bench-") as tmp:
        for round_ in range(args.rounds):
            for kind in ("clean", "dirty"):
                env = new_env(Path(tmp), f"{kind}-{round_}", broker, redis_url)
                if kind == "clean":
                    publish(env, records)
                    poisoned = 0
                else:
                    readers = {t for topics in step_inputs(env).values() for t in topics}
                    inputs = [env.topic(t) for t in ("events.raw", "events.enriched", "anomalies")
                              if env.topic(t) in readers]
                    allow_large_messages(broker, inputs)
                    poisoned = 0
                    for topic in inputs[1:]:
                        few = poison_only(records, len(records) // 100)
                        poisoned += len(publish_tracked(broker, topic, few))
                    poisoned += len(publish_tracked(broker, inputs[0], sprinkle(records)))
                seconds = timed_run(env, args.timeout)
                rate = len(records) / seconds
                rates[kind].append(rate)
                extra = f" (and {poisoned} poisoned messages)" if poisoned else ""
                print(f"{kind:5}  round {round_ + 1}: {len(records)} events in {seconds:6.1f} s = "
                      f"{rate:8.0f} events/s{extra}", flush=True)
    clean, dirty = (sum(rates[k]) / len(rates[k]) for k in ("clean", "dirty"))
    ratio = dirty / clean
    print(f"clean {clean:.0f} events/s, dirty {dirty:.0f} events/s: {ratio:.1%} of clean "
          f"({'within' if ratio >= 0.8 else 'NOT within'} 20%)")


if __name__ == "__main__":
    main()
