"""An enriched event's bytes from its raw bytes, without encoding the record again.

The Event schema ends with the three nullable fields normalizing fills: ``template_id``
and ``template`` (``["null", "string"]``) and ``novelty`` (``["null", "double"]``).  A raw
event leaves them null, and in Avro's binary encoding the null branch of such a union is
a single zero byte, so a raw body ends in three zero bytes and everything before them is
the encoding of the other fields.  When normalizing changed none of those (redaction
passed the message and the attributes as they were, as it does for nearly every line),
the enriched body is that prefix followed by the three new values: byte for byte what
encoding the whole record gives.

That holds only for a body that ends where its record ends (decode it with
``whole=True``), written with the schema this module was checked against (:func:`fits`).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

# The schema's last fields, in order, and what the splice writes for each.
TAIL = (
    ("template_id", ["null", "string"]),
    ("template", ["null", "string"]),
    ("novelty", ["null", "double"]),
)
NULLS = b"\x00\x00\x00"  # the three null branches of a raw event's tail
_DOUBLE = struct.Struct("<d")


def fits(schema: Mapping[str, Any]) -> bool:
    """Whether ``schema`` (an Avro record schema as JSON) ends with :data:`TAIL`."""
    fields = schema.get("fields") or []
    if len(fields) < len(TAIL):
        return False
    return all(f.get("name") == name and f.get("type") == kind
               for f, (name, kind) in zip(fields[-len(TAIL):], TAIL, strict=True))


def tail(template_id: str | None, template: str | None, novelty: float | None) -> bytes:
    """The Avro encoding of the three tail fields."""
    last = b"\x00" if novelty is None else b"\x02" + _DOUBLE.pack(novelty)
    return _text(template_id) + _text(template) + last


def _text(value: str | None) -> bytes:
    if value is None:
        return b"\x00"
    data = value.encode("utf-8")
    return b"\x02" + _long(len(data)) + data


def _long(n: int) -> bytes:
    """Avro's zig-zag varint of a non-negative ``n``."""
    n <<= 1
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)
