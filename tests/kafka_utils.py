"""Helpers for tests against the real Kafka broker (started by .ci/run or `seismo kafka start`)."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from seismo.local.process import child_pids
from seismo.settings import Settings


def bootstrap() -> str:
    return os.environ.get("SEISMO_KAFKA_BOOTSTRAP") or Settings().local_bootstrap


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.25) -> None:
    """Poll ``predicate`` until it holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


_RESERVED = frozenset({8765, 9102, 26379, 29092, 29093})  # the local services' and defaults' ports


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as fh:
            return int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port to listen on that is free now, taken below the kernel's ephemeral range: ``bind(0)``
    hands out ports of that range, which every outgoing connection also takes, so a port found
    free that way could be some client's local port by the time a server binds it."""
    low = _ephemeral_low()
    rng = random.Random()
    for _ in range(100):
        port = rng.randrange(10_000, low) if low > 11_000 else 0
        if port in _RESERVED:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def delete_redis_keys(url: str, pattern: str) -> None:
    """Delete the keys matching ``pattern`` (a SCAN glob) from the Redis at ``url``."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=pattern))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def read_topic(
    topic: str, timeout: float = 15.0, broker: str | None = None
) -> list[tuple[bytes | None, bytes | None]]:
    """Every (key, value) on ``topic`` from the beginning to the current end (of ``broker``, default
    the shared one)."""
    c = Consumer(
        {
            "bootstrap.servers": broker or bootstrap(),
            "fetch.max.bytes": 64 * 1024 * 1024,
            "receive.message.max.bytes": 80 * 1024 * 1024,
            "group.id": f"t-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
        }
    )
    try:
        meta = c.list_topics(topic, timeout=timeout).topics[topic]
        parts = sorted(meta.partitions)
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)[1] for p in parts}
        todo = {p for p in parts if ends[p] > 0}
        c.assign([TopicPartition(topic, p, 0) for p in todo])
        out: list[tuple[bytes | None, bytes | None]] = []
        deadline = time.monotonic() + timeout
        while todo and time.monotonic() < deadline:
            msg = c.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                eof = msg.error().code() == KafkaError._PARTITION_EOF
                if eof and msg.offset() >= ends[msg.partition()]:
                    todo.discard(msg.partition())
                continue
            out.append((msg.key(), msg.value()))
            if msg.offset() + 1 >= ends[msg.partition()]:
                todo.discard(msg.partition())
        assert not todo, f"could not read {topic} to its end"
        return out
    finally:
        c.close()


def consumed(group: str, topic: str, broker: str | None = None) -> tuple[int, int]:
    """(committed offsets summed, end offsets summed) of ``group`` on ``topic`` (of ``broker``).

    Retries for a few seconds while the broker answers a transient error (a partition
    whose leader is still being elected right after the topic was created).
    """
    deadline = time.monotonic() + 15
    while True:
        try:
            return _consumed(group, topic, broker or bootstrap())
        except KafkaException as exc:
            if (not exc.args[0].retriable() and exc.args[0].code() != KafkaError.NOT_LEADER_FOR_PARTITION) \
                    or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _consumed(group: str, topic: str, broker: str) -> tuple[int, int]:
    c = Consumer({"bootstrap.servers": broker, "group.id": group, "enable.auto.commit": False})
    try:
        meta = c.list_topics(topic, timeout=10).topics[topic]
        tps = [TopicPartition(topic, p) for p in sorted(meta.partitions)]
        committed = c.committed(tps, timeout=10)
        ends = sum(c.get_watermark_offsets(tp, timeout=10)[1] for tp in tps)
        done = sum(max(tp.offset, 0) for tp in committed)
        return done, ends
    finally:
        c.close()


CREATED: list[Env] = []


@dataclass
class Env:
    """An isolated Seismo deployment on the shared broker (or ``broker``): its own topics and
    consumer group."""

    state_dir: Path
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    extra: dict[str, str] = field(default_factory=dict)
    broker: str | None = None

    def __post_init__(self) -> None:
        CREATED.append(self)  # conftest deletes every test deployment's topics by the session's end

    @property
    def bootstrap(self) -> str:
        return self.broker or bootstrap()

    @property
    def vars(self) -> dict[str, str]:
        return {
            **os.environ,
            "SEISMO_KAFKA_BOOTSTRAP": self.bootstrap,
            "SEISMO_TOPIC_PREFIX": f"t-{self.run}.",
            "SEISMO_APP_ID": f"seismo-test-{self.run}",
            "SEISMO_STATE_DIR": str(self.state_dir),
            "SEISMO_LOG_LEVEL": "WARNING",
            **self.extra,
        }

    @property
    def settings(self) -> Settings:
        return Settings(
            kafka_bootstrap=self.bootstrap,
            topic_prefix=f"t-{self.run}.",
            app_id=f"seismo-test-{self.run}",
            state_dir=self.state_dir,
        )

    def topic(self, name: str) -> str:
        return f"t-{self.run}.seismo.{name}"

    def seismo(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "seismo", *args],
            env=self.vars,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"seismo {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def spawn(self, *args: str, log_name: str) -> subprocess.Popen[bytes]:
        log = self.state_dir / f"{log_name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as fh:
            return subprocess.Popen(
                [sys.executable, "-m", "seismo", *args],
                env=self.vars,
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def log_tail(self, log_name: str, lines: int = 40) -> str:
        path = self.state_dir / f"{log_name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def stop(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def kill_tree(proc: subprocess.Popen[Any]) -> None:
    """SIGKILL ``proc``'s children, then ``proc``: a crash, with no process left to clean up."""
    for child in child_pids(proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


def wait_worker_done(env: Env, worker: subprocess.Popen[Any], total: int, timeout: float,
                     log_name: str = "worker", dead_lettered: int = 0) -> None:
    """Wait until the worker's normalize group committed ``total`` events on the raw topic, and its
    correlate and score groups every event on the enriched topic (at least ``total``: a replay after
    a crash re-sends some, as at-least-once delivery may).

    Fails with the committed/end offsets and the worker's log tail on timeout or if it exits.
    """
    group = f"seismo-test-{env.run}"
    enriched = env.topic("events.enriched")

    def progress() -> tuple[tuple[int, int], ...]:
        broker = env.bootstrap
        return (consumed(f"{group}-normalize", env.topic("events.raw"), broker),
                consumed(f"{group}-correlate", enriched, broker),
                consumed(f"{group}-score", enriched, broker))

    def correlated() -> bool:
        # the correlator also reads the scorer's anomalies and its own signals topic (one partition, its
        # global stage): done when both are read to the end, checked in the order the outputs are made
        broker = env.bootstrap
        return all(done == end for done, end in (
            consumed(f"{group}-correlate", env.topic("anomalies"), broker),
            consumed(f"{group}-correlate", env.topic("signals"), broker)))

    def finished() -> bool:
        assert worker.poll() is None, f"the worker exited:\n{env.log_tail(log_name)}"
        (raw, raw_end), *enriched = progress()
        return (raw == raw_end == total
                and all(done == end >= total - dead_lettered for done, end in enriched) and correlated())

    try:
        wait_for(finished, timeout, f"the worker to consume all {total} events", interval=0.5)
    except AssertionError as exc:
        raw, correlated, scored = progress()
        raise AssertionError(
            f"{exc}: raw {raw}, correlated {correlated}, scored {scored}\n{env.log_tail(log_name)}"
        ) from None


def wait_healthy(url: str, proc: subprocess.Popen[Any], timeout: float = 60) -> None:
    def ok() -> bool:
        assert proc.poll() is None, f"process exited with {proc.returncode}"
        try:
            return httpx.get(url, timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(ok, timeout, f"{url} to answer 200")
