"""Decoding input records for the steps: an Avro Event, or an InvalidEvent with the reason."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from schemas.codec import codec_for
from schemas.exceptions import SchemaError
from schemas.models import Event
from stream_processors.exceptions import InvalidEvent


def decode_event(value: bytes) -> Event:
    """The validated Event in ``value``; raises :class:`InvalidEvent` (dead-lettered) if none."""
    try:
        return Event.from_avro(codec_for("event").decode(value))
    except SchemaError as exc:
        raise InvalidEvent(f"undecodable Event: {exc}", "undecodable") from None
    except ValidationError as exc:
        raise InvalidEvent(f"Event fails validation: {exc.errors()[:3]}", "invalid_event") from None


def decode_plain(value: bytes) -> dict[str, Any]:
    """The Event record with its writer's schema and no logical types (hot paths reading a few
    fields); raises :class:`InvalidEvent` if undecodable."""
    try:
        return codec_for("event").decode_plain(value)
    except SchemaError as exc:
        raise InvalidEvent(f"undecodable Event: {exc}", "undecodable") from None


def key_text(key: bytes | None) -> str:
    """A record key as text ('' when absent)."""
    return key.decode("utf-8", "replace") if key else ""
