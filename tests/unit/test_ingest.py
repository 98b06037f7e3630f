from __future__ import annotations

import json
from pathlib import Path

import pytest

from producers.exceptions import InvalidEvent
from producers.ingest import ingest_file, parse_line
from schemas.codec import codec_for
from schemas.models import DeadLetter, Event

GOOD = {
    "source": "sentry",
    "kind": "error",
    "timestamp": "2024-05-01T12:00:00Z",
    "service": "payments",
    "severity": "error",
    "message": "KeyError",
}


class RecordingPublisher:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []
        self.flushed = 0

    def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        self.sent.append((topic, key, value))

    def flush(self, timeout: float = 30.0) -> None:
        self.flushed += 1


def test_a_line_without_id_gets_a_stable_id_derived_from_its_content() -> None:
    a = parse_line(json.dumps(GOOD))
    b = parse_line(json.dumps(dict(reversed(list(GOOD.items())))))
    assert a.id == b.id and a.id.startswith("ev-")
    assert parse_line(json.dumps({**GOOD, "message": "other"})).id != a.id


def test_an_explicit_id_is_kept() -> None:
    assert parse_line(json.dumps({**GOOD, "id": "sentry-42"})).id == "sentry-42"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        (json.dumps({**GOOD, "severity": "fatal"}), "severity"),
        (json.dumps({**GOOD, "timestamp": "yesterday"}), "timestamp"),
        (json.dumps({**GOOD, "timestamp": "2024-05-01T12:00:00"}), "UTC offset"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "service"}), "service"),
        (json.dumps({**GOOD, "kind": "metric"}), "metric"),
        (json.dumps({**GOOD, "entity": {"namspace": "x"}}), "entity.namspace"),
        (json.dumps({**GOOD, "attributes": {"n": 1}}), "attributes.n"),
    ],
)
def test_invalid_lines_raise_invalid_event_naming_the_problem(line: str, reason: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_line(line)
    assert reason in info.value.reason


def test_metric_events_need_a_finite_value() -> None:
    line = {**GOOD, "kind": "metric", "metric": {"name": "cpu", "value": 0.5, "unit": "cores"}}
    assert parse_line(json.dumps(line)).metric is not None
    with pytest.raises(InvalidEvent):
        parse_line(json.dumps({**line, "metric": {"name": "cpu", "value": "NaN"}}))


def test_ingest_publishes_valid_lines_keyed_by_service_and_dead_letters_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join([json.dumps(GOOD), "oops", "", json.dumps({**GOOD, "service": "api"})]) + "\n")
    pub = RecordingPublisher()
    summary = ingest_file(path, pub, "raw", "dlq")
    assert (summary.published, summary.rejected, summary.blank) == (2, 1, 1)
    assert pub.flushed == 1
    raw = [(k, Event.from_avro(codec_for("event").decode(v))) for t, k, v in pub.sent if t == "raw"]
    assert [(k, e.service) for k, e in raw] == [(b"payments", "payments"), (b"api", "api")]
    dead = [DeadLetter.from_avro(codec_for("dead_letter").decode(v)) for t, _, v in pub.sent if t == "dlq"]
    assert len(dead) == 1
    assert dead[0].line_number == 2 and dead[0].payload == b"oops"
    assert dead[0].reason.startswith("line 2: not valid JSON")
    assert dead[0].source_file == "events.jsonl"


def test_dry_run_validates_without_publishing(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text(json.dumps(GOOD) + "\nbad\n")
    summary = ingest_file(path, None, "raw", "dlq")
    assert (summary.published, summary.rejected) == (1, 1)


def test_a_file_of_only_bad_lines_is_not_ok(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text("bad\nworse\n")
    assert not ingest_file(path, RecordingPublisher(), "raw", "dlq").ok
