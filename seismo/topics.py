"""Topic names and their creation with explicit partitions and configs."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from seismo.logs import kafka_logging
from seismo.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Topics:
    """Fully-qualified topic names (the configured prefix applied)."""

    raw: str
    enriched: str
    anomalies: str
    cursors: str
    incidents: str
    dlq: str
    signals: str = "seismo.signals"  # internal: the correlator's per-partition stage → its global stage
    feedback: str = "seismo.feedback"  # verdicts on incidents (seismo feedback, record_feedback)

    @classmethod
    def from_settings(cls, settings: Settings) -> Topics:
        p = settings.topic_prefix
        return cls(
            raw=f"{p}seismo.events.raw",
            enriched=f"{p}seismo.events.enriched",
            anomalies=f"{p}seismo.anomalies",
            cursors=f"{p}seismo.cursors",
            incidents=f"{p}seismo.incidents",
            dlq=f"{p}seismo.dlq",
            signals=f"{p}seismo.signals",
            feedback=f"{p}seismo.feedback",
        )


def topic_specs(settings: Settings) -> list[NewTopic]:
    """The topics Seismo owns, with the cleanup policy the design gives each."""
    t = Topics.from_settings(settings)
    n, rf = settings.partitions, settings.replication_factor
    delete = {"cleanup.policy": "delete"}
    compact = {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1",
               "segment.ms": str(6 * 3600 * 1000)}
    return [
        NewTopic(t.raw, n, rf, config={**delete, "retention.ms": str(settings.raw_retention_ms)}),
        NewTopic(t.enriched, n, rf, config=delete),
        NewTopic(t.anomalies, n, rf, config=delete),
        NewTopic(t.cursors, 1, rf, config=compact),
        NewTopic(t.incidents, n, rf, config=compact),
        NewTopic(t.dlq, 1, rf, config={**delete, "retention.ms": str(14 * 24 * 3600 * 1000)}),
        # one partition: every signal meets the one global correlator (docs/correlation.md)
        NewTopic(t.signals, 1, rf, config={**delete, "retention.ms": str(3 * 24 * 3600 * 1000)}),
        # one partition, compacted: the latest verdict per incident (what the gateway also creates)
        NewTopic(t.feedback, 1, rf, config=compact),
    ]


def ensure_topics(settings: Settings, timeout: float = 30.0) -> list[str]:
    """Create missing topics; return the names created.  Blocks up to ``timeout``.

    Raises :class:`confluent_kafka.KafkaException` when the broker refuses a
    creation for any reason other than "already exists".
    """
    admin = AdminClient(kafka_logging({"bootstrap.servers": settings.bootstrap, "log_level": 3}))
    existing = set(admin.list_topics(timeout=timeout).topics)
    wanted = [s for s in topic_specs(settings) if s.topic not in existing]
    created: list[str] = []
    if not wanted:
        return created
    for name, future in admin.create_topics(wanted, operation_timeout=timeout).items():
        try:
            future.result(timeout)
            created.append(name)
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise
    log.info("created topics %s", created)
    return created
