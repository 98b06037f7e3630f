from __future__ import annotations

import copy
import struct
from datetime import UTC, datetime

import pytest

from schemas.codec import HEADER_LEN, MAGIC, AvroCodec, SchemaStore, codec_for, crc64_avro, load_schema
from schemas.exceptions import CorruptMessageError, EncodeError, UnknownSchemaError
from schemas.models import DeadLetter, Entity, Event, Incident, IncidentStatus

EVENT = Event(
    id="ev-1",
    source="kubernetes",
    kind="log",
    timestamp=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
    service="checkout",
    entity={"namespace": "shop", "pod": "checkout-1"},
    severity="error",
    message="boom",
    attributes={"k": "v"},
)


def _event_v2() -> dict[str, object]:
    schema = copy.deepcopy(load_schema("event"))
    fields = schema["fields"]
    assert isinstance(fields, list)
    fields.append({"name": "trace_id", "type": ["null", "string"], "default": None})
    return schema


def test_crc64_avro_matches_the_specs_empty_string_fingerprint() -> None:
    # The Avro spec's fingerprint of no bytes is the EMPTY constant itself.
    assert crc64_avro(b"") == 0xC15D213AA4D7A795


@pytest.mark.parametrize("name", ["event", "incident", "anomaly", "dead_letter"])
def test_every_shipped_schema_parses_and_has_a_distinct_fingerprint(name: str) -> None:
    fps = {codec_for(n).fingerprint for n in ("event", "incident", "anomaly", "dead_letter")}
    assert len(fps) == 4
    assert codec_for(name).encode  # parsed without error


def test_event_round_trips_through_single_object_encoding() -> None:
    codec = codec_for("event")
    data = codec.encode(EVENT.to_avro())
    assert data[:2] == MAGIC
    assert data[2:10] == codec.fingerprint
    assert Event.from_avro(codec.decode(data)) == EVENT


def test_incident_and_dead_letter_round_trip() -> None:
    inc = Incident(
        id="inc-1",
        revision=2,
        status=IncidentStatus.OPEN,
        title="t",
        severity="error",
        opened_at=EVENT.timestamp,
        updated_at=EVENT.timestamp,
        services=["a"],
        sources=["sentry"],
        root_cause_candidates=[{"service": "a", "score": 1.0, "reason": "r"}],
        evidence=[
            {
                "event_id": "e",
                "source": "sentry",
                "kind": "error",
                "timestamp": EVENT.timestamp,
                "service": "a",
                "severity": "error",
                "summary": "s",
            }
        ],
        event_count=1,
    )
    assert (
        Incident.from_avro(codec_for("incident").decode(codec_for("incident").encode(inc.to_avro()))) == inc
    )
    dl = DeadLetter(reason="r", error_type="x", component="c", payload=b"\x00\xff", line_number=3)
    assert (
        DeadLetter.from_avro(codec_for("dead_letter").decode(codec_for("dead_letter").encode(dl.to_avro())))
        == dl
    )


def test_unknown_fingerprint_raises_unknown_schema_error() -> None:
    data = bytearray(codec_for("event").encode(EVENT.to_avro()))
    data[2:10] = struct.pack("<Q", 12345)
    with pytest.raises(UnknownSchemaError, match="unknown schema fingerprint"):
        codec_for("event").decode(bytes(data))


@pytest.mark.parametrize(
    "data",
    [b"", b"{}", b"\xc3\x01abc", b"\xc3\x02" + b"\x00" * 20, "not bytes"],
)
def test_garbage_raises_corrupt_message_error(data: object) -> None:
    with pytest.raises(CorruptMessageError):
        codec_for("event").decode(data)  # type: ignore[arg-type]


def test_truncated_body_raises_corrupt_message_error() -> None:
    data = codec_for("event").encode(EVENT.to_avro())
    with pytest.raises(CorruptMessageError):
        codec_for("event").decode(data[:-5])


def test_a_body_fastavro_cannot_resolve_is_a_corrupt_message(monkeypatch: pytest.MonkeyPatch) -> None:
    import fastavro
    from fastavro.read import SchemaResolutionError

    def unresolvable(*args: object, **kwargs: object) -> object:
        raise SchemaResolutionError("enum index out of range")

    data = codec_for("event").encode(EVENT.to_avro())
    monkeypatch.setattr(fastavro, "schemaless_reader", unresolvable)
    with pytest.raises(CorruptMessageError, match="enum index"):
        codec_for("event").decode(data)


def test_event_v2_with_an_added_optional_field_reads_v1_data() -> None:
    store = SchemaStore()
    v1 = AvroCodec(load_schema("event"), store)
    v2 = AvroCodec(_event_v2(), store)
    record = v2.decode(v1.encode(EVENT.to_avro()))
    assert record["trace_id"] is None
    assert record["id"] == EVENT.id and record["message"] == EVENT.message


def test_v1_reader_reads_event_v2_data() -> None:
    store = SchemaStore()
    v1 = AvroCodec(load_schema("event"), store)
    v2 = AvroCodec(_event_v2(), store)
    data = v2.encode({**EVENT.to_avro(), "trace_id": "abc"})
    assert v1.fingerprint != v2.fingerprint
    decoded = v1.decode(data)
    assert "trace_id" not in decoded
    assert Event.from_avro(decoded) == EVENT


def test_a_reader_that_never_registered_v2_rejects_its_data_with_a_typed_error() -> None:
    v2 = AvroCodec(_event_v2(), SchemaStore())
    v1 = AvroCodec(load_schema("event"), SchemaStore())
    with pytest.raises(UnknownSchemaError):
        v1.decode(v2.encode({**EVENT.to_avro(), "trace_id": None}))


def test_plain_decode_resolved_to_the_current_schema_fills_newer_fields_and_keeps_int_times() -> None:
    store = SchemaStore()
    v1 = AvroCodec(load_schema("event"), store)
    v2 = AvroCodec(_event_v2(), store)
    data = v1.encode(EVENT.to_avro())
    assert "trace_id" not in v2.decode_plain(data)  # the writer's own shape
    resolved = v2.decode_plain(data, current=True)
    assert resolved["trace_id"] is None
    assert resolved["timestamp"] == int(EVENT.timestamp.timestamp() * 1_000_000)
    # encodes again as the current schema, the int time as the same instant
    assert v2.decode(v2.encode(resolved))["timestamp"] == EVENT.timestamp
    # a newer writer's extra field is dropped by the older reader
    assert "trace_id" not in v1.decode_plain(v2.encode({**EVENT.to_avro(), "trace_id": "t"}), current=True)


def _plain_records() -> list[dict[str, object]]:
    """Event records (int times) over the shapes the schema allows: every union branch,
    non-ASCII text, empty and many-entry maps, extreme numbers."""
    base = {**EVENT.to_avro(), "timestamp": 1_714_564_800_000_000}
    return [
        base,
        {**base, "timestamp": -62_135_596_800_000_000, "attributes": {}, "entity": {}},
        {**base, "timestamp": 253_402_300_799_999_999, "message": "", "novelty": 0.0},
        {**base, "kind": "metric", "metric": {"name": "cpu", "value": -1.5e308, "unit": None}},
        {**base, "kind": "metric", "metric": {"name": "µs", "value": 5e-324, "unit": "ms"}},
        {**base, "message": "naïve ünïcødé ✓ 日本語 \U0001f600", "template": "t", "template_id": "T1"},
        {**base, "attributes": {f"k{i}": "v" * i for i in range(200)}, "novelty": 1.0},
        {**base, "entity": {f: f"x-{f}" for f in Entity.model_fields}},
        {**base, "id": "x" * 5000, "service": "s" * 300},
    ]


@pytest.mark.parametrize("record", _plain_records())
def test_the_hot_path_encodes_the_same_bytes_as_fastavro_and_decodes_them_back(
    record: dict[str, object],
) -> None:
    codec = codec_for("event")
    fast = codec.encode_plain(record)
    assert fast == codec.encode({**record})  # fastavro takes int times for timestamp-micros
    expected = {**record, "entity": {**dict.fromkeys(Entity.model_fields), **record["entity"]}}  # type: ignore[dict-item]
    assert codec.decode_plain(fast) == expected
    assert codec.decode_plain(fast, current=True) == expected


@pytest.mark.parametrize("data_of", [
    lambda good: good[:-5],
    lambda good: good[:HEADER_LEN] + b"\x7f" * 3,  # a string length past the end
    lambda good: good[:HEADER_LEN] + b"\x02a" + b"\x7e" + good[HEADER_LEN + 3:],  # enum index 63
    lambda good: good[:HEADER_LEN],
])
def test_the_hot_path_decoder_refuses_a_corrupt_body(data_of: object) -> None:
    codec = codec_for("event")
    good = codec.encode_plain({**EVENT.to_avro(), "id": "a", "timestamp": 0})
    with pytest.raises(CorruptMessageError):
        codec.decode_plain(data_of(good))  # type: ignore[operator]


def test_the_hot_path_encoder_refuses_a_record_that_breaks_the_schema() -> None:
    codec = codec_for("event")
    good = {**EVENT.to_avro(), "timestamp": 0}
    missing_id = {k: v for k, v in good.items() if k != "id"}
    for bad in ({**good, "kind": "nope"}, {**good, "timestamp": "soon"}, missing_id):
        with pytest.raises(EncodeError):
            codec.encode_plain(bad)


@pytest.mark.parametrize("record", _plain_records())
def test_a_projection_decodes_the_chosen_fields_as_the_full_decode_does(record: dict[str, object]) -> None:
    codec = codec_for("event")
    data = codec.encode_plain(record)
    full = codec.decode_plain(data)
    for fields in (("kind", "timestamp", "severity"), ("id", "metric", "attributes", "novelty"), ("entity",)):
        assert codec.decode_plain(data, fields=fields) == {f: full[f] for f in fields}


def test_a_projection_reads_other_writer_versions_and_refuses_unknown_fields_and_corrupt_bodies() -> None:
    store = SchemaStore()
    v1 = AvroCodec(load_schema("event"), store)
    v2 = AvroCodec(_event_v2(), store)
    data = v1.encode_plain({**EVENT.to_avro(), "timestamp": 5})
    assert v2.decode_plain(data, fields=("service", "timestamp")) == {"service": "checkout", "timestamp": 5}
    assert v2.decode_plain(data, fields=("trace_id",)) == {"trace_id": None}  # the reader's default
    with pytest.raises(ValueError, match="no field"):
        v1.decode_plain(data, fields=("trace_id",))
    with pytest.raises(CorruptMessageError):
        v1.decode_plain(data[:-4], fields=("kind",))


def test_a_whole_plain_decode_refuses_bytes_after_the_record_and_the_default_ignores_them() -> None:
    codec = codec_for("event")
    data = codec.encode_plain({**EVENT.to_avro(), "timestamp": 1})
    assert codec.decode_plain(data, whole=True) == codec.decode_plain(data)
    assert codec.decode_plain(data + b"\x01")["id"] == EVENT.id
    with pytest.raises(CorruptMessageError, match="trailing"):
        codec.decode_plain(data + b"\x01", whole=True)
    with pytest.raises(CorruptMessageError):
        codec.decode_plain(data[:-1], whole=True)
