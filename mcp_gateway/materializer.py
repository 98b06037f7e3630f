"""Consumes the compacted incidents topic from the beginning into an IncidentStore.

Stateless by design: every gateway replica builds its own table, so any
number of replicas can serve.  Runs in a daemon thread; ``stop`` joins it.
"""

from __future__ import annotations

import logging

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition
from pydantic import ValidationError

from mcp_gateway.follower import TopicFollower
from mcp_gateway.store import IncidentStore
from schemas.codec import codec_for
from schemas.exceptions import SchemaError
from schemas.models import Incident

log = logging.getLogger(__name__)


def read_incidents(bootstrap: str, topic: str, timeout: float = 30.0) -> IncidentStore:
    """Read the whole topic once and return the materialized table.  Blocks until caught up."""
    store = IncidentStore()
    mat = IncidentMaterializer(bootstrap, topic, store)
    mat.start()
    try:
        if not store.caught_up.wait(timeout):
            raise TimeoutError(f"could not read {topic} from {bootstrap} within {timeout:.0f}s")
    finally:
        mat.stop()
    return store


class IncidentMaterializer(TopicFollower):
    def __init__(self, bootstrap: str, topic: str, store: IncidentStore) -> None:
        super().__init__(bootstrap, topic, "seismo-gateway", "incident-materializer")
        self.store = store
        self.undecodable = 0
        self._end: dict[int, int] = {}

    def _assign(self) -> None:
        """Assign every partition from its beginning, noting where each ends now.  Waits while
        Kafka cannot say (a topic just created has no leader for a moment: NOT_LEADER_FOR_PARTITION),
        as :meth:`_assign_recent` does; returns at once after ``stop``."""
        while (parts := self._partitions()) is not None:
            try:
                ends = {p: self._consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)[1]
                        for p in parts}
            except KafkaException as exc:
                log.warning("waiting for Kafka: %s", exc)
                self._stop.wait(1.0)
                continue
            self._end = ends
            self._consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in parts])
            return

    def _check_caught_up(self) -> None:
        if not self._end or all(v <= 0 for v in self._end.values()):
            self.store.caught_up.set()
            return
        positions = self._consumer.position(
            [TopicPartition(self.topic, p) for p in self._end]
        )
        if all(tp.offset >= self._end[tp.partition] for tp in positions if tp.offset >= 0) and all(
            tp.offset >= 0 or self._end[tp.partition] == 0 for tp in positions
        ):
            self.store.caught_up.set()

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        if value is None:
            if key is not None:
                self.store.delete(key.decode())
            return
        try:
            self.store.upsert(Incident.from_avro(codec_for("incident").decode(value)))
        except (SchemaError, ValidationError) as exc:
            self.undecodable += 1
            log.error("skipping undecodable incident record (key %r): %s", key, exc)

    def _run(self) -> None:
        try:
            self._assign()
            while not self._stop.is_set():
                msg = self._consumer.poll(0.5)
                if msg is None:
                    if not self.store.caught_up.is_set():
                        self._check_caught_up()
                    continue
                err = msg.error()
                if err is not None:
                    if err.code() != KafkaError._PARTITION_EOF:
                        log.warning("incident consumer: %s", err)
                    continue
                self._apply(msg.key(), msg.value())
                if not self.store.caught_up.is_set():
                    self._check_caught_up()
        finally:
            self._consumer.close()
