"""Quick checks a command runs before it hands over to a long-running component.

Each raises :class:`seismo.cliutil.UserError` with one line naming what is wrong and the
fix, in a few seconds, instead of a component retrying silently for 30 s and dying
with a traceback.
"""

from __future__ import annotations

from pathlib import Path

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from seismo.cliutil import EXIT_USAGE, fail
from seismo.logs import kafka_logging
from seismo.settings import Settings


def kafka_fix(settings: Settings) -> str:
    """What to do about a broker that does not answer, given where the address came from."""
    if settings.kafka_bootstrap:
        return ("check SEISMO_KAFKA_BOOTSTRAP (is the broker up, the address right?), or unset it "
                "and run `seismo kafka start` for a local broker")
    return "run `seismo kafka start`, or set SEISMO_KAFKA_BOOTSTRAP to your cluster"


def redis_fix(settings: Settings) -> str:
    if settings.redis_url:
        return ("check SEISMO_REDIS_URL (is Redis up, the address and password right?), "
                "or set SEISMO_STATE_BACKEND=memory")
    return ("run `seismo redis start`, set SEISMO_REDIS_URL to your Redis, or set "
            "SEISMO_STATE_BACKEND=memory (state is then lost on restart)")


def _admin(settings: Settings) -> AdminClient:
    return AdminClient(kafka_logging({"bootstrap.servers": settings.bootstrap,
                                      "socket.connection.setup.timeout.ms": 3000}))


def topics_on_broker(settings: Settings, timeout: float = 5.0) -> set[str]:
    """The broker's topic names; raises UserError (exit 1) when it does not answer within ``timeout``."""
    try:
        return set(_admin(settings).list_topics(timeout=timeout).topics)
    except KafkaException:
        raise fail(f"Kafka at {settings.bootstrap} does not answer; {kafka_fix(settings)}") from None


def require_kafka(settings: Settings, timeout: float = 5.0) -> None:
    """Raise UserError unless the broker answers a metadata request within ``timeout``."""
    topics_on_broker(settings, timeout)


def require_topic(settings: Settings, topic: str, why: str) -> None:
    """Raise UserError (exit 1) when the broker answers but has no ``topic``; ``why`` says who makes it."""
    if topic in topics_on_broker(settings):
        return
    prefix = f"SEISMO_TOPIC_PREFIX={settings.topic_prefix!r}" if settings.topic_prefix else \
        "no SEISMO_TOPIC_PREFIX"
    raise fail(f"the topic {topic} does not exist on {settings.bootstrap} ({prefix}): {why}; "
               "check the prefix, or start `seismo worker` with the same settings")


def require_mask_rules(settings: Settings) -> None:
    """Raise UserError (exit 2) when SEISMO_MASK_RULES_FILE is set but cannot be loaded."""
    path = settings.mask_rules_file
    if path is None:
        return
    problem = mask_rules_problem(path)
    if problem:
        raise fail(problem, EXIT_USAGE)


def mask_rules_problem(path: Path) -> str | None:
    """Why the mask rules file cannot be used (naming the variable and the fix), or None."""
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        return (f"SEISMO_MASK_RULES_FILE={path} {what}; point it at a TOML/YAML rules file "
                "(format in stream_processors/normalize/mask_config.py) or unset it")
    from stream_processors.normalize.mask_config import MaskRulesError, load_masker

    try:
        load_masker(path)
    except MaskRulesError as exc:
        return f"SEISMO_MASK_RULES_FILE: {exc}"
    return None


def unprocessed_events(settings: Settings, topic: str, group: str, timeout: float = 5.0) -> int | None:
    """How many messages of ``topic`` the consumer group ``group`` has not committed (None: unknown).

    Reads committed offsets only; it never joins the group.
    """
    consumer = Consumer(kafka_logging({"bootstrap.servers": settings.bootstrap, "group.id": group,
                                       "enable.auto.commit": False}))
    try:
        meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if meta is None or meta.error is not None:
            return None
        parts = [TopicPartition(topic, p) for p in meta.partitions]
        committed = consumer.committed(parts, timeout=timeout)
        waiting = 0
        for tp in committed:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=timeout)
            waiting += high - (tp.offset if tp.offset >= 0 else low)
        return waiting
    except KafkaException:
        return None
    finally:
        consumer.close()
