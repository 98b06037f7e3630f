"""``seismo dlq``: read the dead letters on ``seismo.dlq`` and count them by component and kind.

Reads the topic once, from the first message at or after ``since`` (by the broker's
message timestamp) to the end it had when the command started, without joining a
consumer group, so reading changes nothing for anyone.  A record that does not decode
is reported as one, never skipped silently.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from pydantic import ValidationError

from schemas.codec import codec_for
from schemas.exceptions import SchemaError
from schemas.models import DeadLetter
from seismo.logs import kafka_logging

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class SinceError(ValueError):
    """``--since`` is neither a duration (``90m``, ``2h``, ``7d``) nor an RFC 3339 time."""


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``2h`` → two hours ago; ``2024-05-01T12:00:00Z`` → that instant (a time without zone is UTC)."""
    now = now or datetime.now(UTC)
    match = _DURATION.fullmatch(text.strip())
    if match:
        return now - timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise SinceError(f"--since {text!r} is neither a duration (30m, 2h, 7d) nor a time "
                         "(2024-05-01T12:00:00Z)") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Letter:
    """One record of the dead-letter topic, where it sits, and its decoded content (None: undecodable)."""

    partition: int
    offset: int
    timestamp: datetime
    letter: DeadLetter | None
    problem: str | None = None

    @property
    def component(self) -> str:
        return self.letter.component if self.letter else "?"

    @property
    def error_type(self) -> str:
        return self.letter.error_type if self.letter else "undecodable_dead_letter"

    @property
    def origin(self) -> str:
        """``events.jsonl line 8`` or ``seismo.events.raw[2]@41``: where the rejected input came from."""
        dl = self.letter
        if dl is None:
            return f"dlq[{self.partition}]@{self.offset}"
        if dl.source_file:
            return f"{dl.source_file} line {dl.line_number}" if dl.line_number else dl.source_file
        if dl.topic:
            return f"{dl.topic}[{dl.partition}]@{dl.offset}"
        return "-"

    @property
    def reason(self) -> str:
        return self.letter.reason if self.letter else (self.problem or "cannot decode")

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"dlq_partition": self.partition, "dlq_offset": self.offset,
                               "logged_at": self.timestamp.isoformat()}
        if self.letter is None:
            return {**doc, "error_type": self.error_type, "reason": self.reason}
        body = self.letter.model_dump(mode="json", exclude={"payload", "original_key"})
        doc.update(body)
        try:
            doc["payload"] = self.letter.payload.decode("utf-8")
        except UnicodeDecodeError:
            doc["payload_base64"] = base64.b64encode(self.letter.payload).decode("ascii")
        return doc


def read_letters(bootstrap: str, topic: str, since: datetime | None = None,
                 timeout: float = 10.0) -> Iterator[Letter]:
    """Yield the letters of ``topic`` up to its current end, partition order mixed.

    Blocks until every partition is read to the end it had at the start.  Raises
    :class:`KafkaException` when the broker does not answer or the topic is missing.
    """
    codec = codec_for("dead_letter")
    consumer = Consumer(kafka_logging({
        "bootstrap.servers": bootstrap, "group.id": "seismo-dlq-reader", "enable.auto.commit": False,
        "enable.partition.eof": True, "auto.offset.reset": "earliest"}))
    try:
        meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if meta is None or meta.error is not None:
            raise KafkaException(meta.error if meta is not None else f"no topic {topic}")
        first: dict[int, int] = {}
        if since is not None:
            millis = int(since.timestamp() * 1000)
            asked = [TopicPartition(topic, p, millis) for p in meta.partitions]
            first = {tp.partition: tp.offset for tp in consumer.offsets_for_times(asked, timeout=timeout)}
        ends: dict[int, int] = {}
        assign: list[TopicPartition] = []
        for p in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
            begin = first.get(p, low) if since is not None else low
            if 0 <= begin < high:  # offsets_for_times answers -1 when nothing is that recent
                ends[p] = high
                assign.append(TopicPartition(topic, p, max(begin, low)))
        consumer.assign(assign)
        idle_until = time.monotonic() + timeout
        while ends:
            msg = consumer.poll(1.0)
            if msg is None:
                if time.monotonic() > idle_until:
                    raise KafkaException(f"{bootstrap} stopped answering while {topic} was read")
                continue
            idle_until = time.monotonic() + timeout
            if msg.error() is not None:
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    ends.pop(msg.partition(), None)
                continue
            part, offset = msg.partition(), msg.offset()
            yield _decode(codec, part, offset, msg.timestamp()[1], msg.value())
            if offset + 1 >= ends.get(part, 0):
                ends.pop(part, None)
    finally:
        consumer.close()


def _decode(codec: Any, partition: int, offset: int, millis: int, value: bytes | None) -> Letter:
    when = datetime.fromtimestamp(millis / 1000, UTC)
    try:
        return Letter(partition, offset, when, DeadLetter.from_avro(codec.decode(value or b"")))
    except (SchemaError, ValidationError) as exc:  # reported as a letter, never dropped
        return Letter(partition, offset, when, None, f"cannot decode this dead letter: {exc}")


def counts(letters: list[Letter]) -> Counter[tuple[str, str]]:
    """How many letters per (component, error_type)."""
    return Counter((letter.component, letter.error_type) for letter in letters)


def letters_json(letters: list[Letter]) -> str:
    """One JSON object per line (JSON Lines), oldest first."""
    return "".join(json.dumps(letter.to_json(), ensure_ascii=False) + "\n" for letter in letters)
