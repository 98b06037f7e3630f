"""The one place a stream step's message becomes a :class:`~schemas.models.DeadLetter` record."""

from __future__ import annotations

from schemas.codec import codec_for
from schemas.models import DeadLetter
from stream_processors.exceptions import InvalidEvent
from stream_processors.runtime.step import Record

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
