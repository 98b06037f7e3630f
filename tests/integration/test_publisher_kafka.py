"""The publisher on the real broker: a refused message is reported once, and publishing goes on."""

from __future__ import annotations

import threading
import uuid

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from producers.exceptions import DeliveryFailed, PublishError
from producers.publisher import KafkaPublisher
from tests.kafka_utils import free_port, read_topic

pytestmark = pytest.mark.kafka


def test_a_refused_message_fails_one_flush_and_the_next_messages_are_delivered(kafka_bootstrap: str) -> None:
    topic = f"t-{uuid.uuid4().hex[:10]}.small"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    spec = NewTopic(topic, 1, 1, config={"max.message.bytes": "2048"})
    admin.create_topics([spec])[topic].result(30)
    try:
        pub = KafkaPublisher(kafka_bootstrap, **{"compression.type": "none"})
        pub.publish(topic, b"k", b"x" * 8192)  # larger than the topic takes: the broker refuses it
        with pytest.raises(DeliveryFailed, match="failed delivery"):
            pub.flush()
        pub.publish(topic, b"k", b"fits")
        pub.flush()  # the earlier failure was reported once; it does not fail every later flush
        assert [v for _, v in read_topic(topic)] == [b"fits"]
        assert pub.stats.failed == 1 and pub.stats.delivered == 1
    finally:
        admin.delete_topics([topic])[topic].result(30)


def test_a_batch_is_delivered_in_order_past_a_full_local_queue(kafka_bootstrap: str) -> None:
    topic = f"t-{uuid.uuid4().hex[:10]}.batch"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    try:
        # a local queue of 100 messages: the batch of 1,000 has to wait for room many times
        pub = KafkaPublisher(kafka_bootstrap, **{"queue.buffering.max.messages": 100})
        batch = [(topic, b"k", f"m{i}".encode()) for i in range(1000)]
        pub.publish_many(batch)
        pub.flush()
        assert [v for _, v in read_topic(topic)] == [v for _, _, v in batch]
        assert pub.stats.delivered == 1000 and pub.stats.failed == 0
    finally:
        admin.delete_topics([topic])[topic].result(30)


def test_a_wait_for_room_in_a_full_queue_ends_when_interrupted() -> None:
    # No broker answers on this port: the queue never drains, so only `interrupted` can end the wait.
    stopping = threading.Event()
    pub = KafkaPublisher(f"127.0.0.1:{free_port()}", interrupted=stopping.is_set,
                         **{"queue.buffering.max.messages": 5, "message.timeout.ms": 0, "log_level": 0})
    raised: list[BaseException] = []

    def publish() -> None:
        try:
            pub.publish_many([("t", b"k", f"m{i}".encode()) for i in range(10)])
        except BaseException as exc:  # handed to the test thread
            raised.append(exc)

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    thread.join(2.0)
    assert thread.is_alive(), "the batch did not wait for room in the full queue"
    stopping.set()
    thread.join(5.0)
    assert not thread.is_alive(), "the wait for room went on after it was interrupted"
    assert len(raised) == 1 and isinstance(raised[0], PublishError), raised
    assert "local queue is full (5 messages" in str(raised[0])
    assert pub.waiting == 5  # the records that fitted stay queued for a later flush
