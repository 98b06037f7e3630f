"""Every worker role is observable: one /metrics over all step processes, and JSON logs that say
where an error happened."""

from __future__ import annotations

import json
import os
import re
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from producers.publisher import KafkaPublisher
from schemas.codec import codec_for
from schemas.models import Event
from seismo.local.process import child_pids
from seismo.topics import ensure_topics
from tests.kafka_utils import Env, bootstrap, free_port, stop, wait_for, wait_worker_done

pytestmark = pytest.mark.kafka

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def sample(text: str, name: str, **labels: str) -> float:
    """The value of the series ``name{labels}`` in a Prometheus exposition (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{name}\{{(.*)\}} (\S+)$", line)
        if match:
            found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
            if all(found.get(k) == v for k, v in labels.items()):
                total += float(match.group(2))
    return total


def test_the_worker_serves_every_steps_metrics_on_one_port_and_logs_errors_as_json_with_their_place(
    seismo_env: Env,
) -> None:
    env = seismo_env
    env.extra.update({"SEISMO_LOG_FORMAT": "json", "SEISMO_EMBEDDER": "hash", "SEISMO_LOG_LEVEL": "INFO"})
    ensure_topics(env.settings)
    events = [
        Event(id=f"e-{i}", source="kubernetes", kind="log", timestamp=T0 + timedelta(seconds=i),
              service=f"svc-{i % 3}", severity="error" if i % 10 == 0 else "info",
              message=f"request {i} took {i % 50} ms")
        for i in range(300)
    ]
    pub, codec = KafkaPublisher(bootstrap()), codec_for("event")
    for e in events:
        pub.publish(env.topic("events.raw"), e.service.encode(), codec.encode(e.to_avro()))
    pub.publish(env.topic("events.raw"), b"svc-0", b"\x00not avro")
    pub.flush()

    port = free_port()
    worker = env.spawn("worker", "--metrics-port", str(port), log_name="worker")
    try:
        wait_worker_done(env, worker, len(events) + 1, 120, dead_lettered=1)

        def scraped() -> str:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except httpx.HTTPError:
                return ""

        def counted() -> bool:
            return sample(scraped(), "seismo_step_events_in_total", step="normalize") == len(events) + 1

        wait_for(counted, 30, "the normalize step's input count on /metrics")
        text = scraped()
        # correlate also reads its own signals topic (and any anomalies): at least every event
        assert sample(text, "seismo_step_events_in_total", step="correlate") >= len(events)
        assert sample(text, "seismo_step_events_in_total", step="score") == len(events)
        assert sample(text, "seismo_step_dead_letters_total", step="normalize", error_type="undecodable") == 1
        assert sample(text, "seismo_step_events_out_total", step="normalize",
                      topic=env.topic("events.enriched")) == len(events)
        incidents = env.topic("incidents")
        assert sample(text, "seismo_step_events_out_total", step="correlate", topic=incidents) > 0
        assert sample(text, "seismo_step_checkpoint_seconds_count", step="score") > 0
        assert sample(text, "seismo_state_store_seconds_count", step="correlate", op="save_many") > 0
        assert "seismo_step_consumer_lag{" in text and "seismo_step_event_time_lag_seconds{" in text
        # all of the raw topic consumed and committed: every partition normalize reports is at lag 0
        raw_lag = [line for line in text.splitlines() if line.startswith("seismo_step_consumer_lag{")
                   and 'step="normalize"' in line and f'topic="{env.topic("events.raw")}"' in line]
        assert raw_lag and all(float(line.rsplit(" ", 1)[1]) == 0 for line in raw_lag), raw_lag

        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
    finally:
        stop(worker)
    lines = [json.loads(x) for x in env.log_tail("worker", 2000).splitlines() if x.startswith("{")]
    (letter,) = [x for x in lines if "dead-lettered" in x["message"]]
    assert letter["step"] == "normalize" and letter["topic"] == env.topic("events.raw")
    assert isinstance(letter["partition"], int) and isinstance(letter["offset"], int)
    assert letter["level"] == "WARNING" and letter["ts"].endswith("Z")


def test_a_worker_whose_redis_is_down_stops_on_sigterm_within_its_grace_period(seismo_env: Env) -> None:
    env = seismo_env
    env.extra.update({"SEISMO_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "SEISMO_EMBEDDER": "hash"})
    ensure_topics(env.settings)
    pub, codec = KafkaPublisher(bootstrap()), codec_for("event")
    for i in range(50):
        e = Event(id=f"e-{i}", source="kubernetes", kind="log", timestamp=T0 + timedelta(seconds=i),
                  service="svc", severity="info", message=f"request {i} done")
        pub.publish(env.topic("events.raw"), b"svc", codec.encode(e.to_avro()))
    pub.flush()
    worker = env.spawn("worker", log_name="worker")
    try:
        wait_for(lambda: "retrying" in env.log_tail("worker", 200), 60, "the worker to wait for Redis")
        assert worker.poll() is None
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(25) == 0, env.log_tail("worker")
    finally:
        stop(worker)
    assert "stopped without saving state" in env.log_tail("worker", 400)


def _step_niceness(worker_pid: int) -> dict[str, int]:
    """``step#index`` -> niceness of each step child of a supervising worker."""
    out = {}
    for pid in child_pids(worker_pid):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            nice = os.getpriority(os.PRIO_PROCESS, pid)
        except (OSError, ProcessLookupError):
            continue
        if b"--role" in argv:
            role, index = argv[argv.index(b"--role") + 1], argv[argv.index(b"--index") + 1]
            out[f"{role.decode()}#{index.decode()}"] = nice
    return out


@pytest.mark.parametrize(("extra", "args", "added"), [
    ({}, (), {"normalize#0": 10, "correlate#0": 0, "score#0": 0}),
    ({"SEISMO_WORKER_UPSTREAM_NICE": "4"}, (), {"normalize#0": 4, "correlate#0": 0, "score#0": 0}),
    ({"SEISMO_WORKER_UPSTREAM_NICE": "0"}, (), {"normalize#0": 0, "correlate#0": 0, "score#0": 0}),
    ({}, ("--role", "normalize", "--processes", "2"), {"normalize#0": 0, "normalize#1": 0}),
])
def test_the_first_step_yields_the_cpu_only_to_later_steps_on_the_same_machine(
    seismo_env: Env, extra: dict[str, str], args: tuple[str, ...], added: dict[str, int],
) -> None:
    env = seismo_env
    env.extra.update({"SEISMO_EMBEDDER": "hash", "SEISMO_LOG_LEVEL": "INFO", **extra})
    base = os.getpriority(os.PRIO_PROCESS, 0)
    worker = env.spawn("worker", *args, log_name="worker")
    try:
        expected = {k: min(base + n, 19) for k, n in added.items()}
        # Every step built and consuming (the nice is applied then), not merely spawned.
        wait_for(lambda: env.log_tail("worker", 400).count("runtime consuming as group") == len(added),
                 60, "every step consuming")
        wait_for(lambda: _step_niceness(worker.pid) == expected, 60, f"step processes niced {expected}")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0, env.log_tail("worker")
    finally:
        stop(worker)


def test_a_stop_asked_for_while_the_steps_start_is_a_graceful_stop(seismo_env: Env) -> None:
    """SIGTERM as soon as the first step process exists (imports, model, Redis still ahead):
    the worker stops its children and exits 0, it is not killed by the signal."""
    env = seismo_env
    env.extra.update({"SEISMO_EMBEDDER": "hash"})
    worker = env.spawn("worker", log_name="worker")
    try:
        wait_for(lambda: bool(child_pids(worker.pid)), 60, "a step process")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(45) == 0, env.log_tail("worker")
    finally:
        stop(worker)
