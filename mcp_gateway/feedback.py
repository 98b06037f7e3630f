"""``record_feedback``'s writer and reader: verdicts on the compacted ``seismo.feedback`` topic
(key = incident id).

The topic is created (compacted) at the first verdict.  :meth:`FeedbackLog.record` blocks until
the broker acknowledged the record (``acks=all``) or raises :class:`RecoverableError`;
:class:`FeedbackMaterializer` reads every verdict back, so all replicas know the latest.
"""

from __future__ import annotations

import logging
import threading

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from pydantic import ValidationError

from mcp_gateway.errors import RecoverableError
from mcp_gateway.follower import TopicFollower
from schemas.codec import codec_for
from schemas.exceptions import SchemaError
from schemas.feedback import Feedback
from seismo.logs import kafka_logging

log = logging.getLogger(__name__)


def feedback_topic(prefix: str) -> str:
    return f"{prefix}seismo.feedback"


class FeedbackLog:
    """Publishes feedback; remembers the latest verdict per incident this gateway wrote."""

    def __init__(self, bootstrap: str, topic: str, timeout: float = 10.0) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.timeout = timeout
        self._producer: Producer | None = None
        self._lock = threading.Lock()
        self.lock = threading.Lock()  # guards `latest`
        self.latest: dict[str, Feedback] = {}

    def _ensure(self) -> Producer:
        if self._producer is not None:
            return self._producer
        admin = AdminClient(kafka_logging({"bootstrap.servers": self.bootstrap, "log_level": 3}))
        try:
            if self.topic not in admin.list_topics(timeout=self.timeout).topics:
                spec = NewTopic(self.topic, 1, 1, config={"cleanup.policy": "compact"})
                for fut in admin.create_topics([spec], operation_timeout=self.timeout).values():
                    try:
                        fut.result(self.timeout)
                    except KafkaException as exc:
                        err = exc.args[0] if exc.args else None
                        if not (
                            isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS
                        ):
                            raise
        except KafkaException as exc:
            raise RecoverableError(
                f"cannot reach Kafka to record feedback: {exc}; retry shortly", 5.0
            ) from exc
        self._producer = Producer(kafka_logging({
            "bootstrap.servers": self.bootstrap, "acks": "all", "enable.idempotence": True, "log_level": 3,
        }))
        return self._producer

    def verdict(self, incident_id: str) -> Feedback | None:
        with self.lock:
            return self.latest.get(incident_id)

    def record(self, feedback: Feedback) -> None:
        with self._lock:
            producer = self._ensure()
            errors: list[str] = []

            def done(err: KafkaError | None, _msg: object) -> None:
                if err is not None:
                    errors.append(str(err))

            producer.produce(
                self.topic,
                key=feedback.incident_id.encode(),
                value=codec_for("feedback").encode(feedback.to_avro()),
                on_delivery=done,
            )
            if producer.flush(self.timeout) > 0 or errors:
                raise RecoverableError(
                    f"Kafka did not acknowledge the feedback ({'; '.join(errors) or 'timed out'}); retry", 5.0
                )
            with self.lock:
                self.latest[feedback.incident_id] = feedback


class FeedbackMaterializer(TopicFollower):
    """Reads the compacted ``seismo.feedback`` from the beginning into ``log.latest`` and follows it,
    so every replica (and a restarted gateway) knows each incident's latest verdict.  Daemon thread."""

    def __init__(self, bootstrap: str, log: FeedbackLog) -> None:
        super().__init__(bootstrap, log.topic, "seismo-gateway-feedback", "feedback")
        self.log = log

    def _run(self) -> None:
        codec = codec_for("feedback")
        try:
            parts = self._partitions()
            if parts is None:
                return
            self._consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in parts])
            while not self._stop.is_set():
                msg = self._consumer.poll(0.5)
                if msg is None or msg.error() is not None or msg.value() is None:
                    continue
                try:
                    fb = Feedback.from_avro(codec.decode(msg.value()))
                except (SchemaError, ValidationError) as exc:
                    log.error("skipping undecodable feedback at offset %s: %s", msg.offset(), exc)
                    continue
                with self.log.lock:
                    self.log.latest[fb.incident_id] = fb
        finally:
            self._consumer.close()
