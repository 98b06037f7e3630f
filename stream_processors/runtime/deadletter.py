"""The one place a stream step's message becomes a :class:`~schemas.models.DeadLetter` record."""

from __future__ import annotations

from schemas.codec import codec_for
from schemas.models import DeadLetter
from stream_processors.exceptions import InvalidEvent
from stream_processors.runtime.step import Record


def dead_letter(record: Record, error: InvalidEvent, component: str) -> bytes:
    """The encoded dead letter of ``record``: its bytes, where it came from, and why."""
    letter = DeadLetter(
        reason=error.reason, error_type=error.error_type, component=component,
        payload=record.value, original_key=record.key,
        topic=record.topic, partition=record.partition, offset=record.offset,
    )
    return codec_for("dead_letter").encode(letter.to_avro())
