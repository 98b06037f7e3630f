"""A stop while the broker is down does not wait out the group coordinator: a commit would wait
for an absent coordinator for the whole session timeout (measured: 10.7 s at the worker's 10 s),
which, beside the bounded flush, would push a step past its stop grace.  The stop's checkpoint
asks the coordinator first (2 s) and leaves the offsets uncommitted when it does not answer: the
partitions replay from the last commit."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from producers.publisher import KafkaPublisher
from stream_processors.runtime.loop import StepRuntime
from stream_processors.runtime.state import MemoryStateStore
from stream_processors.runtime.step import Output, Record
from tests.chaos.conftest import Services
from tests.chaos.workload import new_env
from tests.kafka_utils import wait_for
from tests.runtime_steps import StatelessStep

pytestmark = [pytest.mark.kafka, pytest.mark.redis]


class HeldStep(StatelessStep):
    """Emits nothing; holds its first record until the test lets it go (the broker stops meanwhile)."""

    def __init__(self, source: str) -> None:
        super().__init__(source)
        self.holding, self.release = threading.Event(), threading.Event()

    def handle(self, record: Record, out: Output) -> None:
        self.holding.set()
        assert self.release.wait(60), "the test never let the record go"


class Watched:
    """The runtime's consumer, with its commits counted (confluent-kafka's methods cannot be patched)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.commits = inner, 0

    def commit(self, *args: Any, **kwargs: Any) -> Any:
        self.commits += 1
        return self.inner.commit(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_stop_with_the_coordinator_away_leaves_the_offsets_uncommitted_without_waiting_for_it(
    services_up: Services, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = new_env(tmp_path, "stop", services_up.kafka.bootstrap, services_up.redis.url)
    step = HeldStep(env.topic("events.enriched"))
    runtime = StepRuntime(env.settings, step, MemoryStateStore(), batch_size=10, checkpoint_s=0.05)
    watched = Watched(runtime._consumer)
    runtime._consumer = watched  # type: ignore[assignment]
    failure: list[BaseException] = []

    def main() -> None:
        try:
            runtime.run()
        except BaseException as exc:  # handed to the test
            failure.append(exc)

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    try:
        pub = KafkaPublisher(env.bootstrap)
        pub.publish(env.topic("events.enriched"), b"k", b"one record")
        pub.flush()
        wait_for(step.holding.is_set, 60, "the step to hold the record")
        services_up.kafka.stop()
        runtime.stop()
        with caplog.at_level(logging.WARNING, logger="stream_processors.runtime.loop"):
            step.release.set()
            thread.join(30)
            assert not thread.is_alive(), "the runtime did not return after its stop"
    finally:
        runtime.stop()
        step.release.set()
        thread.join(30)
    assert not failure, failure
    assert watched.commits == 0, "the stop committed (and waited for the absent coordinator) without asking"
    said = [r.getMessage() for r in caplog.records]
    assert any("stopped without" in m for m in said), said
