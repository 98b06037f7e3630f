"""A step that fails because a dependency is away (a KafkaException or a RecoverableError out of its
handle) has not met a poison message: the runtime rewinds to the last checkpoint and processes the
records again; nothing is dead-lettered and every record is handled to the end."""

from __future__ import annotations

import threading

import pytest
from confluent_kafka import KafkaError, KafkaException

from producers.publisher import KafkaPublisher
from seismo.topics import ensure_topics
from stream_processors.exceptions import RecoverableError
from stream_processors.runtime.loop import StepRuntime
from stream_processors.runtime.state import MemoryStateStore
from stream_processors.runtime.step import Output, Record
from tests.kafka_utils import Env, read_topic, wait_for
from tests.runtime_steps import StatelessStep

pytestmark = pytest.mark.kafka


class FlakyStep(StatelessStep):
    """Copies raw records to enriched; the records at ``fail_at`` fail once each, with ``error``."""

    def __init__(self, env: Env, fail_at: dict[int, Exception]) -> None:
        super().__init__(env.topic("events.raw"))
        self.enriched = env.topic("events.enriched")
        self.fail_at = fail_at
        self.handled: list[int] = []

    def handle(self, record: Record, out: Output) -> None:
        error = self.fail_at.pop(record.offset, None)
        if error is not None:
            raise error
        self.handled.append(record.offset)
        out.emit(self.enriched, record.key, record.value)


def test_a_step_whose_dependency_fails_is_rewound_and_retried_not_dead_lettered(seismo_env: Env) -> None:
    env = seismo_env
    settings = env.settings.model_copy(update={"partitions": 1})
    ensure_topics(settings)
    pub = KafkaPublisher(env.bootstrap)
    for i in range(300):
        pub.publish(env.topic("events.raw"), b"k", f"record {i}".encode())
    pub.flush()
    broker_down = KafkaException(KafkaError(KafkaError._TRANSPORT, "Failed to get metadata"))
    step = FlakyStep(env, {40: broker_down, 250: RecoverableError("redis away")})
    runtime = StepRuntime(settings, step, MemoryStateStore(), batch_size=50, checkpoint_s=0.1)
    thread = threading.Thread(target=runtime.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: 299 in step.handled, 60, "the last record to be handled")
    finally:
        runtime.stop()
        thread.join(30)
    assert not thread.is_alive()
    assert set(step.handled) == set(range(300)), "a record was skipped"
    assert not read_topic(env.topic("dlq"), broker=env.bootstrap), "a record was dead-lettered"
    enriched = {v for _, v in read_topic(env.topic("events.enriched"), broker=env.bootstrap)}
    assert enriched == {f"record {i}".encode() for i in range(300)}
