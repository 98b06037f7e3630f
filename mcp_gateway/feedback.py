"""``record_feedback``'s writer: verdicts on the compacted ``seismo.feedback`` topic (key = incident id).

The topic is created (compacted) on first use.  :meth:`FeedbackLog.record` blocks until the
broker acknowledged the record (``acks=all``) or raises :class:`RecoverableError`.
"""

from __future__ import annotations

import threading

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from mcp_gateway.errors import RecoverableError
from schemas.codec import codec_for
from schemas.feedback import Feedback


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
        self.latest: dict[str, Feedback] = {}

    def _ensure(self) -> Producer:
        if self._producer is not None:
            return self._producer
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 3})
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
        self._producer = Producer(
            {
                "bootstrap.servers": self.bootstrap,
                "acks": "all",
                "enable.idempotence": True,
                "log_level": 3,
            }
        )
        return self._producer

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
            self.latest[feedback.incident_id] = feedback
