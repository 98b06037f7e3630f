"""Decoding input records for the steps: an Avro Event, or an InvalidEvent with the reason."""

from __future__ import annotations

import math
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


# Event times a datetime can hold (years 1-9999), in microseconds since the epoch.
_FIRST_US = -62_135_596_800_000_000
_LAST_US = 253_402_300_799_999_999


def decode_event_record(value: bytes) -> dict[str, Any]:
    """The Event in ``value`` as its Avro record, resolved to the current schema, with an
    ``int`` timestamp (microseconds); raises :class:`InvalidEvent` (dead-lettered) if it is
    undecodable or breaks a rule of :class:`Event` that Avro does not hold.

    What :func:`decode_event` accepts, without building the model: for a step that only
    reads and re-encodes the record (normalize), validation is a third of its cost."""
    try:
        record = codec_for("event").decode_plain(value, current=True, whole=True)
    except SchemaError as exc:
        raise InvalidEvent(f"undecodable Event: {exc}", "undecodable") from None
    if not _FIRST_US <= record["timestamp"] <= _LAST_US:  # what a datetime cannot hold
        raise InvalidEvent("undecodable Event: timestamp is outside the years 1-9999", "undecodable")
    problem = _problem(record)
    if problem is not None:
        raise InvalidEvent(f"Event fails validation: {problem}", "invalid_event")
    return record


def _problem(record: dict[str, Any]) -> str | None:
    """Why ``record`` is not a valid Event (the checks of its pydantic model), or None."""
    for name in ("id", "service"):
        if not 1 <= len(record[name]) <= 256:
            return f"{name} must be 1 to 256 characters"
    metric = record["metric"]
    if metric is None:
        if record["kind"] == "metric":
            return "kind 'metric' needs a 'metric' object with name and value"
    elif not metric["name"]:
        return "metric name must not be empty"
    elif not math.isfinite(metric["value"]):
        return "metric value must be a finite number"
    return None


def decode_plain(value: bytes, fields: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The Event record with its writer's schema and no logical types (hot paths reading a few
    fields; ``fields``: only those, see :meth:`~schemas.codec.AvroCodec.decode_plain`); raises
    :class:`InvalidEvent` if undecodable."""
    try:
        return codec_for("event").decode_plain(value, fields=fields)
    except SchemaError as exc:
        raise InvalidEvent(f"undecodable Event: {exc}", "undecodable") from None


def key_text(key: bytes | None) -> str:
    """A record key as text ('' when absent)."""
    return key.decode("utf-8", "replace") if key else ""
