"""The normalize step splices the raw bytes instead of encoding again: same bytes, or no splice."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from schemas.codec import codec_for, load_schema
from schemas.models import Event
from seismo.settings import Settings
from seismo.topics import Topics
from stream_processors.exceptions import InvalidEvent
from stream_processors.normalize import splice
from stream_processors.normalize.adapter import NormalizeAdapter
from stream_processors.normalize.durable import DurableTemplates
from stream_processors.normalize.normalizer import Normalizer
from stream_processors.runtime.step import MAX_OUTPUT_BYTES, Output, Record

RAW = {
    "id": "ev-1", "source": "kubernetes", "kind": "log", "timestamp": 1_714_564_800_000_000, "service": "api",
    "entity": dict.fromkeys(("namespace", "pod", "container", "node", "cluster", "region", "log_group",
                             "project", "release")),
    "severity": "info", "message": "GET /items/17 200 in 12ms", "metric": None, "attributes": {"k": "v"},
    "template_id": None, "template": None, "novelty": None,
}


@pytest.mark.parametrize("tail", [
    (None, None, None),
    ("T1", "GET <PATH> <NUM>", 0.25),
    ("M" + "f" * 12, "x" * 63, 1.0),  # a one-byte length
    ("T2", "y" * 64, 0.0),  # the first two-byte length
    ("T3", "z" * 20_000, None),  # three bytes
    ("T4", "naïve ✓ 日本語 \U0001f600 <NUM>", 1e-9),
    (None, "", 0.5),
])
def test_the_splice_gives_the_bytes_a_full_encode_gives(tail: tuple[Any, Any, Any]) -> None:
    codec = codec_for("event")
    raw = codec.encode_plain(RAW)
    assert raw.endswith(splice.NULLS)
    template_id, template, novelty = tail
    enriched = {**RAW, "template_id": template_id, "template": template, "novelty": novelty}
    assert raw[:-3] + splice.tail(template_id, template, novelty) == codec.encode_plain(enriched)


def test_the_shipped_event_schema_ends_with_the_spliced_fields_and_another_order_is_refused() -> None:
    schema = load_schema("event")
    assert splice.fits(schema)
    moved = copy.deepcopy(schema)
    fields = moved["fields"]
    assert isinstance(fields, list)
    fields[-1], fields[-2] = fields[-2], fields[-1]
    assert not splice.fits(moved)
    assert not splice.fits({"fields": fields[-2:]})


def _adapter() -> NormalizeAdapter:
    return NormalizeAdapter(Topics.from_settings(Settings()), DurableTemplates(Normalizer()), None)


def _run(adapter: NormalizeAdapter, *values: bytes) -> list[bytes]:
    out = Output()
    for i, value in enumerate(values):
        adapter.handle(Record("raw", 0, i, b"api", value, 0), out)
    adapter.end_batch(out)
    return [v for _, _, v in out.records]


def test_spliced_and_encoded_events_decode_to_what_the_normalizer_makes() -> None:
    codec = codec_for("event")
    plain = {**RAW}
    secret = {**RAW, "id": "ev-2", "message": "login with password=hunter2 failed"}  # redaction: encoded
    templated = {**RAW, "id": "ev-3", "template": "preset", "template_id": "X"}  # not a raw tail: encoded
    out = _run(_adapter(), *(codec.encode_plain(r) for r in (plain, secret, templated)))
    normalizer = Normalizer()
    for record, data in zip((plain, secret, templated), out, strict=True):
        expected = normalizer.normalize(Event.from_avro(codec.decode(codec.encode_plain(record)))).to_avro()
        assert codec.decode(data) == expected
    assert "hunter2" not in codec.decode(out[1])["message"]


def test_an_event_with_bytes_after_its_record_is_refused_not_spliced() -> None:
    raw = codec_for("event").encode_plain(RAW)
    with pytest.raises(InvalidEvent) as caught:
        _run(_adapter(), raw + b"\x00\x00\x00")
    assert caught.value.error_type == "undecodable"
    assert "trailing" in caught.value.reason


def _words(n_chars: int, seed: int) -> str:
    """Text the masker keeps as it is (no numbers, no ids): its template is as long as itself."""
    import random
    import string

    rng = random.Random(seed)
    words = ("".join(rng.choice(string.ascii_lowercase) for _ in range(7)) for _ in range(n_chars // 8 + 1))
    out = " ".join(words)
    return out[:n_chars]


def test_an_event_whose_enriched_form_would_not_fit_a_record_is_refused_and_the_next_goes_through() -> None:
    codec = codec_for("event")
    adapter = _adapter()
    fits_ = codec.encode_plain({**RAW, "id": "ok-big", "message": _words(480_000, 1)})
    too_big = codec.encode_plain({**RAW, "id": "too-big", "message": _words(510_000, 2)})
    assert len(too_big) < 512 * 1024  # under the input bound: only its output is too large
    out = Output()
    adapter.handle(Record("raw", 0, 0, b"api", fits_, 0), out)
    with pytest.raises(InvalidEvent) as caught:
        adapter.handle(Record("raw", 0, 1, b"api", too_big, 0), out)
    assert caught.value.error_type == "too_large" and "enriched event" in caught.value.reason
    adapter.handle(Record("raw", 0, 2, b"api", codec.encode_plain(RAW), 0), out)
    adapter.end_batch(out)
    sent = [codec.decode_plain(v) for _, _, v in out.records]
    assert [e["id"] for e in sent] == ["ok-big", "ev-1"]
    assert max(len(v) for _, _, v in out.records) <= MAX_OUTPUT_BYTES
