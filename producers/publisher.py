"""Publishing to Kafka with the delivery guarantees the design asks for.

:class:`KafkaPublisher` is an idempotent confluent-kafka producer with
``acks=all``: a retried send never duplicates a message in a partition and
nothing counts as published before every in-sync replica has it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from confluent_kafka import KafkaError, Message, Producer

from producers.exceptions import DeliveryFailed, PublishError

log = logging.getLogger(__name__)


class EventPublisher(Protocol):
    """Where producers send encoded records."""

    def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Queue one record; never blocks for longer than it takes to make buffer room."""

    def flush(self, timeout: float = 30.0) -> None:
        """Block until every queued record is acknowledged; raise :class:`PublishError` if not."""


@dataclass
class DeliveryStats:
    delivered: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


class KafkaPublisher:
    """Idempotent, ``acks=all`` producer.  Not thread-safe; one per thread."""

    def __init__(self, bootstrap: str, client_id: str = "seismo",
                 interrupted: Callable[[], bool] | None = None, **overrides: Any) -> None:
        """``overrides`` are librdkafka settings.  ``interrupted`` (when given) ends a wait for room in a
        full local queue: once it answers True, :meth:`publish_many` raises PublishError instead of
        waiting on (with the broker away, the queue never drains and the wait would never end)."""
        config: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            "client.id": client_id,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 20,
            "compression.type": "lz4",
            "message.timeout.ms": 60000,
            # Transient broker states (coordinator loading …) are retried by librdkafka;
            # real failures reach on_delivery and PublishError.
            "log_level": 3,
            # librdkafka's own lines go through Python logging (SEISMO_LOG_FORMAT), not raw to stderr.
            "logger": logging.getLogger("seismo.kafka"),
        }
        config.update(overrides)
        self._producer = Producer(config)
        self._interrupted = interrupted
        self.stats = DeliveryStats()
        self._unreported = 0  # failed deliveries no flush has raised for yet

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.stats.delivered += 1
            return
        self.stats.failed += 1
        self._unreported += 1
        if len(self.stats.errors) < 20:
            self.stats.errors.append(f"{msg.topic()}: {err.str()}")
        log.error("delivery to %s failed: %s", msg.topic(), err.str())

    @property
    def waiting(self) -> int:
        """Records queued or in flight, not yet acknowledged by the broker."""
        return len(self._producer)

    def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        self.publish_many(((topic, key, value),))

    def publish_many(self, records: Iterable[tuple[str, bytes | None, bytes]]) -> None:
        """:meth:`publish` each ``(topic, key, value)`` in order; delivery reports are served
        once at the end (and whenever the local queue is full), not after every message.  A full
        queue is waited on until it has room, or until ``interrupted`` says so (PublishError; the
        records before the one that did not fit are queued)."""
        produce, on_delivery = self._producer.produce, self._on_delivery
        for topic, key, value in records:
            while True:
                try:
                    produce(topic, value=value, key=key, on_delivery=on_delivery)
                    break
                except BufferError:
                    if self._interrupted is not None and self._interrupted():
                        raise PublishError(f"the local queue is full ({self.waiting} messages "
                                           "waiting for the broker) and the wait was interrupted") from None
                    self._producer.poll(0.5)
        self._producer.poll(0)

    def flush(self, timeout: float = 30.0) -> None:
        """Raises :class:`DeliveryFailed` once for deliveries that failed since the last flush
        (those messages are gone), :class:`PublishError` when messages are still waiting for
        the broker after ``timeout`` (a later flush may see them acknowledged)."""
        remaining = self._producer.flush(timeout)
        if self._unreported:
            failed, errors = self._unreported, self.stats.errors[:3]
            self._unreported = 0
            self.stats.errors.clear()
            raise DeliveryFailed(f"{failed} messages failed delivery: {'; '.join(errors)}")
        if remaining:
            raise PublishError(f"{remaining} messages not acknowledged within {timeout:.0f}s")
