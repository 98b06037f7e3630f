"""The normalize step's record decoder accepts and refuses exactly what the Event model does."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import fastavro
import pytest

from schemas.codec import codec_for
from schemas.models import Event
from stream_processors.exceptions import InvalidEvent
from stream_processors.runtime.records import decode_event, decode_event_record

GOOD = Event(
    id="ev-1", source="kubernetes", kind="log", timestamp=datetime(2024, 5, 1, 12, 0, 0, 7, tzinfo=UTC),
    service="checkout", entity={"namespace": "shop", "pod": "checkout-1"}, severity="error",
    message="boom", attributes={"k": "v"},
)
GOOD_US = 1_714_564_800_000_007


def _raw(**change: Any) -> bytes:
    """An Event body written past the model (any record Avro itself accepts)."""
    codec = codec_for("event")
    record = {**GOOD.to_avro(), "timestamp": GOOD_US, **change}
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, codec._plain_schema(codec.fingerprint), record)
    return codec._header + buf.getvalue()


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"kind": "metric", "metric": {"name": "cpu", "value": 0.5, "unit": None}},
        {"id": "x" * 256, "service": "s"},
        {"timestamp": 0},
        {"novelty": 0.25, "template": "boom", "template_id": "T1"},
    ],
)
def test_a_valid_event_decodes_to_the_records_the_model_would_write(change: dict[str, Any]) -> None:
    raw = _raw(**change)
    record = decode_event_record(raw)
    model = decode_event(raw).to_avro()
    assert record.pop("timestamp") == change.get("timestamp", GOOD_US)
    assert model.pop("timestamp") == datetime.fromtimestamp(change.get("timestamp", GOOD_US) / 1e6, UTC)
    assert record == model


@pytest.mark.parametrize(
    "change",
    [
        {"id": ""},
        {"id": "x" * 257},
        {"service": ""},
        {"service": "s" * 257},
        {"kind": "metric", "metric": None},
        {"kind": "metric", "metric": {"name": "", "value": 1.0, "unit": None}},
        {"kind": "metric", "metric": {"name": "cpu", "value": float("nan"), "unit": None}},
        {"kind": "metric", "metric": {"name": "cpu", "value": float("inf"), "unit": None}},
        {"timestamp": 253_402_300_800_000_000},
        {"timestamp": -62_135_596_800_000_001},
    ],
)
def test_an_invalid_event_is_refused_by_both_with_the_same_error_type(change: dict[str, Any]) -> None:
    raw = _raw(**change)
    with pytest.raises(InvalidEvent) as by_model:
        decode_event(raw)
    with pytest.raises(InvalidEvent) as by_record:
        decode_event_record(raw)
    assert by_record.value.error_type == by_model.value.error_type
    assert "Event" in by_record.value.reason


def test_bytes_that_are_no_event_are_undecodable() -> None:
    with pytest.raises(InvalidEvent) as caught:
        decode_event_record(b"garbage")
    assert caught.value.error_type == "undecodable"
