"""What the gateway's topic readers share: a never-committing consumer on a daemon thread.

Every gateway replica (and every restart) reads its topics again from where its
subclass says: nothing is committed, the group id is a fresh name.  A subclass
implements ``_run`` (it must close ``self._consumer`` on the way out) and finds
the topic's partitions with :meth:`TopicFollower._partitions`.
"""

from __future__ import annotations

import logging
import threading
import uuid

from confluent_kafka import Consumer, KafkaException

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
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

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
