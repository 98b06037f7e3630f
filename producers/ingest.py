"""``seismo ingest FILE``: JSON-lines events to ``seismo.events.raw``.

Each line is validated against the ingest contract (``schemas.models.Event``);
a line that fails goes to the dead-letter topic with its line number and the
reason, and ingest goes on.  Valid events are Avro-encoded and published with
key = service, so that one service's events stay ordered in one partition.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from producers.exceptions import InvalidEvent
from producers.publisher import EventPublisher
from schemas.codec import codec_for
from schemas.models import DeadLetter, Event, derive_event_id


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming each failing field and why, e.g. ``timestamp: invalid datetime``."""
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "event"
        parts.append(f"{where}: {err['msg']}")
    more = len(exc.errors()) - 5
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def parse_event(payload: Any) -> Event:
    """Validate one decoded JSON value as an Event; raise :class:`InvalidEvent` if it is not one.

    A missing ``id`` is derived from the content, so re-reading the same line
    always yields the same id.
    """
    if not isinstance(payload, dict):
        raise InvalidEvent(f"expected a JSON object, got {type(payload).__name__}")
    if payload.get("id") in (None, ""):
        payload = {**payload, "id": derive_event_id(payload)}
    try:
        return Event.model_validate(payload)
    except ValidationError as exc:
        raise InvalidEvent(describe_validation_error(exc)) from None


def parse_line(line: str) -> Event:
    """Parse one JSON-lines line; raise :class:`InvalidEvent` with the reason."""
    try:
        payload = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InvalidEvent(f"not valid JSON: {exc.msg} at column {exc.colno}", "invalid_json") from None
    return parse_event(payload)


MAX_REASONS = 1000
"""Rejection reasons an :class:`IngestSummary` keeps in memory (all of them go to the DLQ)."""


@dataclass
class IngestSummary:
    lines: int = 0
    published: int = 0
    rejected: int = 0
    blank: int = 0
    reasons: list[str] = field(default_factory=list)
    """``line 8: timestamp: Field required`` for the first :data:`MAX_REASONS` rejected lines."""

    @property
    def ok(self) -> bool:
        """False when nothing could be published although there was input."""
        return self.published > 0 or self.lines == self.blank


@dataclass(frozen=True)
class LineResult:
    number: int
    raw: bytes
    event: Event | None
    error: InvalidEvent | None


def decode_line(raw: bytes) -> str:
    """``raw`` as UTF-8 (a leading BOM dropped); raise :class:`InvalidEvent` naming the first bad byte.

    Bytes that are not UTF-8 (Latin-1 text, say) are rejected, never silently replaced
    by U+FFFD.
    """
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        byte = raw[exc.start]
        raise InvalidEvent(f"not UTF-8: byte 0x{byte:02x} at column {exc.start + 1} (the file looks "
                           "Latin-1 or another encoding); convert it to UTF-8, e.g. "
                           "`iconv -f latin1 -t utf-8`", "invalid_encoding") from None


def read_lines(path: Path) -> Iterator[LineResult]:
    """Yield every line of ``path`` parsed; blank lines yield neither event nor error."""
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                text = decode_line(raw).strip()
            except InvalidEvent as exc:
                yield LineResult(number, raw, None, exc)
                continue
            if not text:
                yield LineResult(number, raw, None, None)
                continue
            try:
                yield LineResult(number, raw, parse_line(text), None)
            except InvalidEvent as exc:
                yield LineResult(number, raw, None, exc)


def ingest_file(
    path: Path,
    publisher: EventPublisher | None,
    raw_topic: str,
    dlq_topic: str,
    on_line: Callable[[int], None] | None = None,
) -> IngestSummary:
    """Publish every valid line of ``path``; dead-letter every invalid one.

    With ``publisher=None`` it only validates (``--dry-run``).  Blocks until the
    broker acknowledged everything; raises :class:`producers.exceptions.PublishError`
    if it did not.  ``on_line`` receives the byte length of each line read.
    """
    event_codec, dlq_codec = codec_for("event"), codec_for("dead_letter")
    summary = IngestSummary()
    for result in read_lines(path):
        summary.lines += 1
        if on_line is not None:
            on_line(len(result.raw))
        if result.event is None and result.error is None:
            summary.blank += 1
            continue
        if result.error is not None:
            summary.rejected += 1
            reason = f"line {result.number}: {result.error.reason}"
            if len(summary.reasons) < MAX_REASONS:
                summary.reasons.append(reason)
            if publisher is not None:
                letter = DeadLetter(
                    reason=reason,
                    error_type=result.error.error_type,
                    component="ingest",
                    payload=result.raw.rstrip(b"\r\n"),
                    source_file=path.name,
                    line_number=result.number,
                )
                publisher.publish(dlq_topic, None, dlq_codec.encode(letter.to_avro()))
            continue
        assert result.event is not None
        summary.published += 1
        if publisher is not None:
            event = result.event
            publisher.publish(raw_topic, event.service.encode(), event_codec.encode(event.to_avro()))
    if publisher is not None:
        publisher.flush()
    return summary
