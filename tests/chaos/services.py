"""A private Kafka broker and redis-server per chaos module, which a test may stop and start.

The shared broker (29092) and Redis (26379) serve every other test; a chaos test
breaks its own: a one-node KRaft broker from ``seismo.local.kafka`` and a
redis-server with an append-only file (so a stopped Redis comes back with its data,
as a restarted production Redis with persistence does), each on free ports under the
module's own state directory.  Starting either fails the test loudly (java, the
broker jars or redis-server missing) rather than skipping it.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import redis

from seismo.local.kafka import LocalKafka, broker_answers
from seismo.local.process import LocalServiceError, ManagedProcess
from seismo.local.redis import redis_answers
from seismo.settings import Settings
from tests.kafka_utils import free_port


class PrivateKafka:
    """One KRaft node on free ports; :meth:`stop` and :meth:`start` keep its log directory."""

    FIRST_START_TRIES = 3

    def __init__(self, state_dir: Path) -> None:
        self._root = state_dir
        self._tries = 0
        self._started = False
        self._configure()

    def _configure(self) -> None:
        port, controller = free_port(), free_port()
        state = self._root if not self._tries else self._root / f"retry-{self._tries}"
        self.settings = Settings(
            kafka_bootstrap=None, local_kafka_port=port, local_kafka_controller_port=controller,
            state_dir=state, local_kafka_heap="512m",
        )
        self.bootstrap = self.settings.local_bootstrap
        self._node = LocalKafka(self.settings)

    def start(self, timeout: float = 120) -> float:
        """Start the node; blocks until it answers.  Returns the seconds it took.  The first start
        moves to other free ports (and a fresh log directory) when the node does not come up: a
        port ``free_port`` found free may be taken by another socket before the broker binds it.
        A restart keeps its ports, which clients hold."""
        started = time.monotonic()
        while True:
            try:
                self._node.start(timeout=timeout)
                self._started = True
                return time.monotonic() - started
            except LocalServiceError as exc:
                self._tries += 1
                if self._started or self._tries >= self.FIRST_START_TRIES:
                    pytest.fail(f"the chaos suite's private broker did not start: {exc}")
                self._node.stop()
                self._configure()

    def stop(self) -> None:
        """SIGTERM the node (its controlled shutdown) and wait until it no longer answers."""
        self._node.stop()
        assert not broker_answers(self.bootstrap, timeout=1), "the private broker still answers"


class PrivateRedis:
    """redis-server on a free port with ``appendfsync always``: what it acknowledged survives a stop."""

    def __init__(self, state_dir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc = ManagedProcess("chaos-redis", state_dir)
        self._started = False

    def start(self, timeout: float = 20) -> None:
        """Start redis-server unless it answers already; blocks until PING works.  Like the broker,
        the first start moves to another free port when the one found free was taken meanwhile."""
        if redis_answers(self.url):
            return
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server not found: the chaos suite needs it (apt-get install -y redis-server)")
        self._proc.dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, 4):
            try:
                self._proc.start(
                    [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self._proc.dir),
                     "--save", "", "--appendonly", "yes", "--appendfsync", "always"],
                    address=self.url, marker="redis-server", ready=lambda: redis_answers(self.url),
                    timeout=timeout,
                )
                self._started = True
                return
            except LocalServiceError as exc:
                if self._started or attempt == 3:
                    pytest.fail(f"the chaos suite's private redis-server did not start: {exc}")
                self.port = free_port()
                self.url = f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self._proc.stop()
        assert not redis_answers(self.url), "the private redis-server still answers"

    def flush(self) -> None:
        """FLUSHALL: every key of this server is gone (it is the chaos module's own)."""
        client = redis.Redis.from_url(self.url)
        try:
            client.flushall()
        finally:
            client.close()

    def keys(self) -> int:
        client = redis.Redis.from_url(self.url)
        try:
            return int(client.dbsize())
        finally:
            client.close()
