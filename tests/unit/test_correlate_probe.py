"""The correlate step's broker probe asks nothing for a while after the broker failed to answer:
with the broker down, a batch would otherwise block its timeout once per question and partition,
and a stop asked for meanwhile would wait for all of them."""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaException

from stream_processors.correlate.probe import UNREACHABLE_BACKOFF_S, KafkaProbe


class DeadBroker:
    """A consumer whose every question fails, as librdkafka's do after their timeout."""

    def __init__(self) -> None:
        self.asked = 0

    def get_watermark_offsets(self, *_: Any, **__: Any) -> tuple[int, int]:
        self.asked += 1
        raise KafkaException("Failed to get watermark offsets: Local: Timed out")

    def committed(self, *_: Any, **__: Any) -> list[Any]:
        self.asked += 1
        raise KafkaException("Local: Timed out")


def test_after_an_unanswered_question_none_is_asked_until_the_backoff_ends() -> None:
    now = [100.0]
    probe = KafkaProbe("127.0.0.1:1", "t.enriched", "t.raw", "g", timeout=0.1, clock=lambda: now[0])
    dead = DeadBroker()
    probe._consumer = dead  # type: ignore[assignment]
    probe._normalize = dead  # type: ignore[assignment]

    assert probe.caught_up(0, 10) is False  # asked once, failed: "not caught up", as before
    assert dead.asked == 1
    for partition in range(6):  # the rest of the batch: answered at once, nothing asked
        assert probe.caught_up(partition, 10) is False
        assert probe.idle(partition, 10) is False
        assert probe.empty(partition) is False
    assert dead.asked == 1

    now[0] += UNREACHABLE_BACKOFF_S + 0.1  # the backoff is over: the broker is asked again
    assert probe.empty(0) is False
    assert dead.asked == 2
