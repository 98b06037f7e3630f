"""How many partitions the correlator must wait for, and which of them are empty on the broker.

A seam (:class:`PartitionProbe`) so the adapter is tested without a broker.  The Kafka
implementation asks the broker for the enriched topic's partition count once, and —
only while some partition has sent no mark yet — whether that partition (and the raw
partition that feeds it) has ever held a message.
"""

from __future__ import annotations

import logging
from typing import Protocol

from confluent_kafka import Consumer, KafkaException, TopicPartition

log = logging.getLogger(__name__)


class PartitionProbe(Protocol):
    def partitions(self) -> int:
        """Partitions of the enriched topic (≥ 1)."""

    def empty(self, partition: int) -> bool:
        """True when the partition and its raw counterpart never held a message."""


class FixedProbe:
    """A probe with a fixed answer (tests, and a fallback when the broker cannot be asked)."""

    def __init__(self, count: int, empty: frozenset[int] = frozenset()) -> None:
        self.count, self._empty = count, set(empty)

    def partitions(self) -> int:
        return self.count

    def empty(self, partition: int) -> bool:
        return partition in self._empty


class KafkaProbe:
    """Asks the broker; blocks up to ``timeout`` per question; a broker error answers "not empty"."""

    def __init__(self, bootstrap: str, enriched: str, raw: str, timeout: float = 5.0) -> None:
        self.enriched, self.raw, self.timeout = enriched, raw, timeout
        self._consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "seismo-correlate-probe",
                                   "enable.auto.commit": False, "log_level": 3})
        self._count: int | None = None

    def partitions(self) -> int:
        if self._count is None:
            meta = self._consumer.list_topics(self.enriched, timeout=self.timeout).topics[self.enriched]
            self._count = max(1, len(meta.partitions))
        return self._count

    def empty(self, partition: int) -> bool:
        try:
            for topic in (self.enriched, self.raw):
                _low, high = self._consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=self.timeout, cached=False)
                if high > 0:
                    return False
        except KafkaException as exc:
            log.warning("correlate: cannot read the offsets of partition %s: %s", partition, exc)
            return False
        return True
