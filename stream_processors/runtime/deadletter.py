"""The one place a stream step's message becomes a :class:`~schemas.models.DeadLetter` record."""

from __future__ import annotations

import logging
from typing import Any

from schemas.codec import codec_for
from schemas.models import DeadLetter
from seismo.logs import fields
from stream_processors.exceptions import InvalidEvent
from stream_processors.runtime.metrics import series
from stream_processors.runtime.step import Output, Record

log = logging.getLogger("stream_processors.runtime.loop")  # where an operator looks for them

MAX_PAYLOAD_BYTES = 64 * 1024
"""A dead letter keeps at most this much of the message (its place says where the rest is)."""


def dead_letter(record: Record, error: InvalidEvent, component: str) -> bytes:
    """The encoded dead letter of ``record``: its bytes (the first :data:`MAX_PAYLOAD_BYTES`, the reason
    says when cut, so a huge message still fits the dead-letter topic), where it came from, and why."""
    reason, payload = error.reason, record.value
    if len(payload) > MAX_PAYLOAD_BYTES:
        reason = f"{reason} (payload cut to its first {MAX_PAYLOAD_BYTES} of {len(payload)} bytes)"
        payload = payload[:MAX_PAYLOAD_BYTES]
    letter = DeadLetter(
        reason=reason, error_type=error.error_type, component=component,
        payload=payload, original_key=record.key,
        topic=record.topic, partition=record.partition, offset=record.offset,
    )
    return codec_for("dead_letter").encode(letter.to_avro())


def park(record: Record, error: InvalidEvent, step: str, dlq_topic: str, out: Output) -> None:
    """Send ``record``'s dead letter to ``dlq_topic`` with the batch's outputs; log and count it."""
    log.warning("%s: dead-lettered %s[%s]@%s: %s", step, record.topic, record.partition, record.offset,
                error.reason, extra=where(record, step))
    out.emit(dlq_topic, record.key, dead_letter(record, error, step))
    series().dead_letters.labels(step, error.error_type).inc()


def where(record: Record, step: str) -> dict[str, Any]:
    """The log fields that say which step and which message."""
    return fields(step=step, topic=record.topic, partition=record.partition, offset=record.offset)
