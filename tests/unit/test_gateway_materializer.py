"""The gateway's incident reader waits out a partition without a leader instead of dying."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from mcp_gateway.materializer import IncidentMaterializer
from mcp_gateway.store import IncidentStore

TOPIC = "seismo.incidents"


class NewTopicConsumer:
    """A consumer of a topic created a moment ago: its first watermark query finds no leader."""

    def __init__(self) -> None:
        self.refusals = 1
        self.assigned: list[TopicPartition] = []
        self.closed = False

    def list_topics(self, topic: str, timeout: float) -> Any:
        return SimpleNamespace(topics={topic: SimpleNamespace(error=None, partitions={0: None})})

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float) -> tuple[int, int]:
        if self.refusals:
            self.refusals -= 1
            raise KafkaException(KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION))
        return 0, 0

    def assign(self, parts: list[TopicPartition]) -> None:
        self.assigned = parts

    def poll(self, timeout: float) -> None:
        return None

    def close(self) -> None:
        self.closed = True


def test_a_partition_without_a_leader_yet_is_waited_for_and_the_table_catches_up() -> None:
    store = IncidentStore()
    reader = IncidentMaterializer("127.0.0.1:9", TOPIC, store)
    fake = NewTopicConsumer()
    reader._consumer = fake
    reader.start()
    try:
        assert store.caught_up.wait(10), "the reader died or never caught up"
        assert reader._thread.is_alive()
        assert fake.refusals == 0 and [(tp.topic, tp.partition) for tp in fake.assigned] == [(TOPIC, 0)]
    finally:
        reader.stop()
    assert fake.closed
