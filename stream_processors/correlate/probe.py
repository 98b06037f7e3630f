"""How many partitions the correlator must wait for, which are empty, and which are idle.

A seam (:class:`PartitionProbe`) so the adapter is tested without a broker.  The Kafka
implementation asks the broker for the enriched topic's partition count once; whether a
partition (and the raw partition that feeds it) ever held a message; and whether a
partition is *idle*: the normalize step committed its raw partition to the end (so every
enriched record it will make exists) and the correlator has read the enriched partition
to its end.  An idle partition holds nothing back; a replayed file's tail is released.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

from confluent_kafka import Consumer, KafkaException, TopicPartition

log = logging.getLogger(__name__)
T = TypeVar("T")
IDLE_RECHECK_S = 1.0
UNREACHABLE_BACKOFF_S = 5.0  # after a question the broker did not answer, how long none is asked


class _Unreachable(KafkaException):  # type: ignore[misc]
    """Not asked: the broker did not answer a question moments ago."""


class PartitionProbe(Protocol):
    def partitions(self) -> int:
        """Partitions of the enriched topic (≥ 1)."""

    def empty(self, partition: int) -> bool:
        """True when the partition and its raw counterpart never held a message."""

    def idle(self, partition: int, next_offset: int) -> bool:
        """True when nothing more is coming on the partition: normalize has read its raw partition to
        the end and ``next_offset`` (after the correlator's last record) is the enriched end."""

    def caught_up(self, partition: int, next_offset: int) -> bool:
        """True when ``next_offset`` is the enriched partition's end (normalize may still be working)."""


class FixedProbe:
    """A probe with a fixed answer (tests, the in-process benchmark): ``ends`` gives each partition's
    end offset; a partition without one never idles."""

    def __init__(self, count: int, empty: frozenset[int] = frozenset(), ends: dict[int, int] | None = None
                 ) -> None:
        self.count, self._empty, self.ends = count, set(empty), dict(ends or {})

    def partitions(self) -> int:
        return self.count

    def empty(self, partition: int) -> bool:
        return partition in self._empty

    def idle(self, partition: int, next_offset: int) -> bool:
        end = self.ends.get(partition)
        return end is not None and next_offset >= end

    def caught_up(self, partition: int, next_offset: int) -> bool:
        return self.idle(partition, next_offset)


class KafkaProbe:
    """Asks the broker; blocks up to ``timeout`` per question; a broker error answers "not empty".

    Once a question goes unanswered, none is asked for ``UNREACHABLE_BACKOFF_S`` (each answers as an
    error would, at once): with the broker down, a batch that asks about every partition would
    otherwise block ``timeout`` per question, and a stop asked for meanwhile would wait for all of
    them."""

    def __init__(self, bootstrap: str, enriched: str, raw: str, normalize_group: str, timeout: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.enriched, self.raw, self.timeout = enriched, raw, timeout
        self._normalize = Consumer({"bootstrap.servers": bootstrap, "group.id": normalize_group,
                                    "enable.auto.commit": False, "log_level": 3})
        self._clock = clock
        self._idle: dict[int, tuple[float, int, bool]] = {}  # partition → (asked at, offset, answer)
        self._ends: dict[int, tuple[float, int]] = {}  # partition → (asked at, enriched end offset)
        self._consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "seismo-correlate-probe",
                                   "enable.auto.commit": False, "log_level": 3})
        self._count: int | None = None
        self._down_until = float("-inf")

    def _ask(self, question: Callable[[], T]) -> T:
        """``question()``, unless the broker failed to answer one in the last backoff."""
        if self._clock() < self._down_until:
            raise _Unreachable("the broker did not answer moments ago; not asked again yet")
        try:
            return question()
        except KafkaException:
            self._down_until = self._clock() + UNREACHABLE_BACKOFF_S
            raise

    def partitions(self) -> int:
        if self._count is None:
            meta = self._ask(lambda: self._consumer.list_topics(self.enriched, timeout=self.timeout)
                             ).topics[self.enriched]
            self._count = max(1, len(meta.partitions))
        return self._count

    def empty(self, partition: int) -> bool:
        try:
            for topic in (self.enriched, self.raw):
                _low, high = self._watermarks(topic, partition)
                if high > 0:
                    return False
        except KafkaException as exc:
            _warn("correlate: cannot read the offsets of partition %s: %s", partition, exc)
            return False
        return True

    def _watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        low, high = self._ask(lambda: self._consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=self.timeout, cached=False))
        return int(low), int(high)

    def _end(self, partition: int, fresh: bool) -> int:
        cached = self._ends.get(partition)
        now = self._clock()
        if not fresh and cached is not None and now - cached[0] < IDLE_RECHECK_S:
            return cached[1]
        _low, end = self._watermarks(self.enriched, partition)
        self._ends[partition] = (now, int(end))
        return int(end)

    def caught_up(self, partition: int, next_offset: int) -> bool:
        try:  # an end offset only grows: behind a cached one is behind, no round trip
            return next_offset >= self._end(partition, False) and next_offset >= self._end(partition, True)
        except KafkaException as exc:
            _warn("correlate: cannot read the end of partition %s: %s", partition, exc)
            return False

    def idle(self, partition: int, next_offset: int) -> bool:
        if not self.caught_up(partition, next_offset):
            return False
        cached = self._idle.get(partition)
        now = self._clock()
        if cached is not None and cached[1] == next_offset and now - cached[0] < IDLE_RECHECK_S:
            return cached[2]
        answer = False
        try:
            _low, raw_end = self._watermarks(self.raw, partition)
            (done,) = self._ask(lambda: self._normalize.committed(
                [TopicPartition(self.raw, partition)], timeout=self.timeout))
            answer = max(done.offset, 0) >= raw_end
        except KafkaException as exc:
            _warn("correlate: cannot tell whether partition %s is idle: %s", partition, exc)
        self._idle[partition] = (now, next_offset, answer)
        return answer


def _warn(message: str, partition: int, exc: KafkaException) -> None:
    if not isinstance(exc, _Unreachable):  # said once, when the broker first failed to answer
        log.warning(message, partition, exc)
