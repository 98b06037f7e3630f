"""What the gateway's topic readers share: a never-committing consumer on a daemon thread.

Every gateway replica (and every restart) reads its topics again from where its
subclass says: nothing is committed, the group id is a fresh name.  A subclass
implements ``_run`` (it must close ``self._consumer`` on the way out) and finds
the topic's partitions with :meth:`TopicFollower._partitions`; a reader of a recent
window assigns them with :meth:`TopicFollower._assign_recent` and asks
:meth:`TopicFollower._reached_end` whether it has caught up.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaException, TopicPartition

from seismo.logs import kafka_logging

log = logging.getLogger(__name__)


class TopicFollower:
    """A consumer of ``topic`` run by ``start`` on a daemon thread; ``stop`` joins it."""

    def __init__(self, bootstrap: str, topic: str, group_prefix: str, thread_name: str) -> None:
        self.topic = topic
        self._consumer = Consumer(kafka_logging({
            "bootstrap.servers": bootstrap,
            "group.id": f"{group_prefix}-{uuid.uuid4().hex}",  # never commits; just a name
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "log_level": 3,
        }))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name=thread_name, daemon=True)
        self.failure: str | None = None
        """Why the reader stopped on its own (an error it did not expect); None while it runs.  The
        gateway is then unhealthy (/healthz 503), so an orchestrator restarts it, rather than
        serving what the reader had read so far as if it were current."""
        self._start: dict[int, int] = {}  # partition -> first offset read (set by _assign_recent)
        self._end: dict[int, int] = {}  # partition -> its end at assignment

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _main(self) -> None:
        try:
            self._run()
        except Exception as exc:  # a bug or an unforeseen failure: say so, and make it visible
            self.failure = f"{type(exc).__name__}: {exc}"
            log.exception("the gateway's reader of %s stopped: %s", self.topic, self.failure)

    def _run(self) -> None:
        raise NotImplementedError

    def _partitions(self) -> list[int] | None:
        """The topic's partitions, sorted; waits while Kafka or the topic is missing.

        None once ``stop`` was called."""
        while not self._stop.is_set():
            try:
                meta = self._consumer.list_topics(self.topic, timeout=5)
            except KafkaException as exc:
                log.warning("waiting for Kafka: %s", exc)
                self._stop.wait(1.0)
                continue
            tmeta = meta.topics.get(self.topic)
            if tmeta is None or tmeta.error is not None or not tmeta.partitions:
                log.info("waiting for topic %s to exist", self.topic)
                self._stop.wait(1.0)
                continue
            return sorted(tmeta.partitions)
        return None

    def _assign_recent(self, lookback_s: float, clock: Callable[[], float], keep: int) -> list[int] | None:
        """Assign every partition from its first record of the last ``lookback_s`` seconds
        (arrival time, on the window's ``clock``), at most ``keep`` from its end; records
        where each starts and ends.  Waits while Kafka is away; None once ``stop`` was called."""
        while (parts := self._partitions()) is not None:
            try:
                since_ms = int((clock() - lookback_s) * 1000)
                by_time = self._consumer.offsets_for_times(
                    [TopicPartition(self.topic, p, since_ms) for p in parts], timeout=10
                )
                for tp in by_time:
                    low, high = self._consumer.get_watermark_offsets(
                        TopicPartition(self.topic, tp.partition), timeout=10
                    )
                    self._end[tp.partition] = high
                    self._start[tp.partition] = start_offset(low, high, tp.offset, keep)
            except KafkaException as exc:
                log.warning("waiting for Kafka: %s", exc)
                self._stop.wait(1.0)
                continue
            self._consumer.assign([TopicPartition(self.topic, p, self._start[p]) for p in parts])
            return parts
        return None

    def _reached_end(self) -> bool:
        """Whether every partition was read to the end it had at assignment."""
        todo = [p for p in self._end if self._start[p] < self._end[p]]
        if todo:
            positions = self._consumer.position([TopicPartition(self.topic, p) for p in todo])
            if any(tp.offset < self._end[tp.partition] for tp in positions):
                return False
        return True


def start_offset(low: int, high: int, by_time: int, max_events: int) -> int:
    """Where a partition is read from: the later of its beginning ``low``, the first record
    of the lookback ``by_time`` (negative: no record that recent, so ``high``) and
    ``high - max_events``."""
    first_recent = high if by_time < 0 else min(by_time, high)
    return max(low, first_recent, high - max_events)
