"""Durable poller cursors: one JSON object per (source, stream), kept in the compacted ``seismo.cursors``.

A cursor says how far a stream has been read (a timestamp, a page token, a
resourceVersion …); its shape belongs to the stream that writes it.  The
store has two methods, :meth:`CursorStore.load` and :meth:`CursorStore.save`:

* :class:`MemoryCursorStore` — for unit tests; a dict.
* :class:`KafkaCursorStore` — production.  :meth:`KafkaCursorStore.restore`
  reads the compacted topic from the beginning to its end (the latest value
  per key wins, a tombstone deletes); :meth:`~KafkaCursorStore.save` publishes
  ``key = "source/stream"``, ``value = JSON`` and blocks until the broker
  acknowledged it.

The poller base calls ``save`` only after the events the cursor covers were
acknowledged (see :mod:`producers.base`), so a restart re-reads at most the
batch that was in flight: at-least-once, never a gap.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Protocol

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from producers.exceptions import RecoverableError
from producers.publisher import EventPublisher

log = logging.getLogger(__name__)

Cursor = dict[str, Any]
"""A JSON object; its keys are the stream's business."""


def cursor_key(source: str, stream: str) -> str:
    """The record key in ``seismo.cursors``: ``source/stream`` (e.g. ``sentry/issues:acme/payments``)."""
    return f"{source}/{stream}"


class CursorStore(Protocol):
    """Where cursors live.  ``load`` never blocks on I/O; ``save`` blocks until durable."""

    def load(self, key: str) -> Cursor | None:
        """The last saved cursor for ``key``, or None when the stream was never read."""

    def save(self, key: str, cursor: Cursor) -> None:
        """Make ``cursor`` durable; raise :class:`RecoverableError` when that failed."""


class MemoryCursorStore:
    """In-memory store; ``history`` keeps every save in order for assertions."""

    def __init__(self, initial: dict[str, Cursor] | None = None) -> None:
        self._cursors: dict[str, Cursor] = dict(initial or {})
        self.history: list[tuple[str, Cursor]] = []

    def load(self, key: str) -> Cursor | None:
        value = self._cursors.get(key)
        return json.loads(json.dumps(value)) if value is not None else None

    def save(self, key: str, cursor: Cursor) -> None:
        copy = json.loads(json.dumps(cursor))  # the same JSON round trip as Kafka
        self._cursors[key] = copy
        self.history.append((key, copy))


class KafkaCursorStore:
    """Cursors in a compacted topic.  Build with :meth:`restore`; one instance per poller process."""

    def __init__(self, publisher: EventPublisher, topic: str, cursors: dict[str, Cursor]) -> None:
        self._publisher, self._topic = publisher, topic
        self._cursors = cursors

    @classmethod
    def restore(
        cls, bootstrap: str, topic: str, publisher: EventPublisher, timeout: float = 30.0
    ) -> KafkaCursorStore:
        """Read ``topic`` to its end and return a store holding the latest cursor per key.

        Blocks up to about ``timeout`` seconds; raises :class:`RecoverableError`
        when the broker cannot be read.  A missing topic means no cursors yet.
        Unparseable values are logged and ignored (the stream starts over).
        """
        return cls(publisher, topic, read_cursors(bootstrap, topic, timeout))

    def load(self, key: str) -> Cursor | None:
        value = self._cursors.get(key)
        return json.loads(json.dumps(value)) if value is not None else None

    def save(self, key: str, cursor: Cursor) -> None:
        body = json.dumps(cursor, sort_keys=True, separators=(",", ":")).encode("utf-8")
        self._publisher.publish(self._topic, key.encode("utf-8"), body)
        self._publisher.flush()
        self._cursors[key] = json.loads(body)


def read_cursors(bootstrap: str, topic: str, timeout: float = 30.0) -> dict[str, Cursor]:
    """Every key's latest cursor in ``topic``, read from the beginning to the high watermark.

    Transient broker states (a topic just created whose leader is not elected yet) are
    retried until ``timeout``; after that :class:`RecoverableError` is raised.
    """
    deadline = time.monotonic() + timeout
    delay = 0.2
    while True:
        try:
            return _read_cursors_once(bootstrap, topic, timeout)
        except RecoverableError as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.info("%s; retrying in %.1fs", exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def _read_cursors_once(bootstrap: str, topic: str, timeout: float) -> dict[str, Cursor]:
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "seismo-cursor-restore",
        "enable.auto.commit": False,
        "enable.partition.eof": False,
        "log_level": 3,
        "logger": logging.getLogger("seismo.kafka"),  # through Python logging, not raw to stderr
    })
    cursors: dict[str, Cursor] = {}
    try:
        meta = consumer.list_topics(topic, timeout=timeout)
        info = meta.topics.get(topic)
        if info is None or info.error is not None or not info.partitions:
            log.info("cursor topic %s not found: starting without cursors", topic)
            return cursors
        ends: dict[int, int] = {}
        for pid in info.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, pid), timeout=timeout)
            if high > low:
                ends[pid] = high
        if not ends:
            return cursors
        consumer.assign([TopicPartition(topic, pid, OFFSET_BEGINNING) for pid in ends])
        _consume_until(consumer, ends, cursors, timeout)
    except KafkaException as exc:
        raise RecoverableError(f"cannot read cursors from {topic}: {exc}") from exc
    finally:
        consumer.close()
    return cursors


def _consume_until(consumer: Any, ends: dict[int, int], cursors: dict[str, Cursor], timeout: float) -> None:
    done: set[int] = set()
    idle = 0.0
    while len(done) < len(ends):
        msg = consumer.poll(0.5)
        if msg is None:
            idle += 0.5
            if idle > timeout:
                raise RecoverableError(f"cursor topic not readable to its end within {timeout:.0f}s")
            continue
        idle = 0.0
        if msg.error() is not None:
            raise RecoverableError(f"cursor topic read failed: {msg.error()}")
        key = (msg.key() or b"").decode("utf-8", errors="replace")
        value = msg.value()
        if value is None:
            cursors.pop(key, None)
        else:
            try:
                parsed = json.loads(value)
            except (json.JSONDecodeError, UnicodeDecodeError):
                log.warning("ignoring unparseable cursor for %s at offset %s", key, msg.offset())
                parsed = None
            if isinstance(parsed, dict):
                cursors[key] = parsed
        if msg.offset() + 1 >= ends[msg.partition()]:
            done.add(msg.partition())
