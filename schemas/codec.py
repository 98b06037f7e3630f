"""Avro single-object encoding with fastavro (and cavro on the steps' hot paths).

Wire format (Avro spec, "Single-object encoding")::

    C3 01 | 8-byte little-endian CRC-64-AVRO fingerprint | Avro binary body

The fingerprint is taken over the schema's Parsing Canonical Form.  A decoder
looks the fingerprint up in a :class:`SchemaStore` to find the *writer* schema
and resolves it against its own *reader* schema, so that readers and writers
of backward-compatible schema versions interoperate.
"""

from __future__ import annotations

import dataclasses
import io
import json
import struct
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

import fastavro
from fastavro.read import SchemaResolutionError
from fastavro.schema import to_parsing_canonical_form

from schemas.exceptions import CorruptMessageError, EncodeError, UnknownSchemaError

MAGIC = b"\xc3\x01"
HEADER_LEN = len(MAGIC) + 8
_EMPTY = 0xC15D213AA4D7A795


def _table() -> list[int]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (_EMPTY & -(fp & 1))
        table.append(fp)
    return table


_FP_TABLE = _table()


def crc64_avro(data: bytes) -> int:
    """Return the CRC-64-AVRO fingerprint of ``data`` (Avro spec's algorithm)."""
    fp = _EMPTY
    for byte in data:
        fp = (fp >> 8) ^ _FP_TABLE[(fp ^ byte) & 0xFF]
    return fp


def fingerprint(parsed_schema: Any) -> bytes:
    """8-byte little-endian fingerprint of a parsed schema's canonical form."""
    canonical = to_parsing_canonical_form(parsed_schema)
    return struct.pack("<Q", crc64_avro(canonical.encode("utf-8")))


class SchemaStore:
    """Known writer schemas by fingerprint.  Thread-safe for reads after setup."""

    def __init__(self) -> None:
        self._by_fp: dict[bytes, Any] = {}

    def register(self, schema: Mapping[str, Any] | Any) -> bytes:
        """Parse and register a schema; return its fingerprint.  Idempotent."""
        parsed = fastavro.parse_schema(dict(schema) if isinstance(schema, Mapping) else schema)
        fp = fingerprint(parsed)
        self._by_fp.setdefault(fp, parsed)
        return fp

    def lookup(self, fp: bytes) -> Any:
        """Return the parsed schema; raise :class:`UnknownSchemaError` if unknown."""
        try:
            return self._by_fp[fp]
        except KeyError:
            raise UnknownSchemaError(
                f"unknown schema fingerprint {fp.hex()}: the writer used a schema this "
                "reader has not registered"
            ) from None


class AvroCodec:
    """Encodes records with one writer schema; decodes any registered writer schema.

    ``encode`` raises :class:`EncodeError` for a record that does not match the
    schema.  ``decode`` raises :class:`CorruptMessageError` or
    :class:`UnknownSchemaError`; neither blocks nor performs I/O.
    """

    def __init__(self, schema: Mapping[str, Any], store: SchemaStore | None = None) -> None:
        self.store = store if store is not None else SchemaStore()
        self.schema: Any = fastavro.parse_schema(dict(schema))
        self.fingerprint = self.store.register(self.schema)
        self._header = MAGIC + self.fingerprint
        self._plain: dict[bytes, Any] = {}
        self._cavro: dict[bytes, Any] = {}
        self._projections: dict[tuple[bytes, tuple[str, ...]], Any] = {}
        self._one_byte: Any = None

    @property
    def name(self) -> str:
        return str(self.schema["name"])

    def encode(self, record: Mapping[str, Any]) -> bytes:
        buf = io.BytesIO()
        buf.write(self._header)
        try:
            fastavro.schemaless_writer(buf, self.schema, record)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise EncodeError(f"record does not match schema {self.name}: {exc}") from exc
        return buf.getvalue()

    def decode(self, data: bytes) -> dict[str, Any]:
        data = _checked(data)
        fp = data[2:HEADER_LEN]
        if fp == self.fingerprint:  # written with this very schema: nothing to resolve
            return self._read(data, self.schema, None)
        return self._read(data, self.store.lookup(fp), self.schema)

    def encode_plain(self, record: Mapping[str, Any]) -> bytes:
        """:meth:`encode` for a record whose logical types are their Avro types (a
        ``timestamp-micros`` as an ``int``): the hot path of the steps, by cavro (about
        twice as fast as fastavro, byte for byte the same encoding; docs/decisions.md).
        Raises :class:`EncodeError` like :meth:`encode`."""
        try:
            body: bytes = self._fast(self.fingerprint).binary_encode(record)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            raise EncodeError(f"record does not match schema {self.name}: {exc}") from exc
        return self._header + body

    def decode_plain(
        self, data: bytes, current: bool = False, fields: tuple[str, ...] | None = None,
        whole: bool = False,
    ) -> dict[str, Any]:
        """Decode with the writer's own schema, logical types left as their Avro types.

        A ``timestamp-micros`` stays an ``int``.  Without ``current`` no resolution
        against this codec's schema happens: a record of an older writer version simply
        lacks the newer fields.  With ``current`` such a record is resolved to this
        codec's schema (newer fields take their defaults), so it can be encoded again
        with :meth:`encode_plain`.  The hot path of the steps, by cavro: about half the
        cost of :meth:`decode`.  Unlike :meth:`decode` it does not look for bytes after
        the record (they would not change it) unless ``whole`` is set: then they make it
        corrupt (for input from outside, and for a caller that reuses the body's bytes).
        Raises like :meth:`decode`.

        ``fields`` (top-level fields of this codec's schema, each present in every writer
        version or with a default) decodes only those: the others are skipped, not built,
        about half the cost for a step that reads a few fields.
        """
        data = _checked(data)
        fp = data[2:HEADER_LEN]
        if fields is not None:
            fast = self._projection(fp, fields)
        elif current and fp != self.fingerprint:
            return self._read(data, self._plain_schema(fp), self._plain_schema(self.fingerprint))
        else:
            fast = self._fast(fp)
        try:
            if whole:
                record = self._read_whole(fast, data[HEADER_LEN:])
            else:
                record = fast.binary_decode(data[HEADER_LEN:])
        except (EOFError, ValueError, TypeError, KeyError, IndexError, UnicodeDecodeError,
                OverflowError) as exc:
            raise CorruptMessageError(f"corrupt {self.name} body: {exc!r}") from exc
        if not isinstance(record, dict):
            raise CorruptMessageError(f"{self.name} body did not decode to a record")
        return record

    def _read_whole(self, fast: Any, body: bytes) -> Any:
        """``fast``'s record in ``body``; CorruptMessageError if bytes follow it."""
        import cavro

        if self._one_byte is None:
            self._one_byte = self._cavro_schema({"type": "fixed", "name": "OneByte", "size": 1})
        reader = cavro.MemoryReader(body)
        record = fast.binary_read(reader)
        try:
            self._one_byte.binary_read(reader)  # one more byte must not be there
        except EOFError:
            return record
        raise CorruptMessageError(f"trailing bytes after {self.name} body")

    def _plain_schema(self, fp: bytes) -> Any:
        plain = self._plain.get(fp)
        if plain is None:
            plain = self._plain[fp] = fastavro.parse_schema(_without_logical_types(self.store.lookup(fp)))
        return plain

    def _projection(self, fp: bytes, fields: tuple[str, ...]) -> Any:
        """cavro's reader of ``fields`` of this codec's schema for writer schema ``fp``."""
        key = (fp, fields)
        projection = self._projections.get(key)
        if projection is None:
            reader = _without_logical_types(self.schema)
            known = {f["name"] for f in reader["fields"]}
            if unknown := [f for f in fields if f not in known]:
                raise ValueError(f"schema {self.name} has no field(s) {', '.join(unknown)}")
            reader["fields"] = [f for f in reader["fields"] if f["name"] in fields]
            projection = self._projections[key] = self._cavro_schema(reader).reader_for_writer(self._fast(fp))
        return projection

    def _fast(self, fp: bytes) -> Any:
        """The cavro form of writer schema ``fp``, logical types as their Avro types."""
        fast = self._cavro.get(fp)
        if fast is None:
            fast = self._cavro[fp] = self._cavro_schema(_without_logical_types(self.store.lookup(fp)))
        return fast

    @staticmethod
    def _cavro_schema(schema: dict[str, Any]) -> Any:
        import cavro  # imports numpy: not on the CLI's start-up path

        options = dataclasses.replace(cavro.DEFAULT_OPTIONS, record_decodes_to_dict=True, logical_types=())
        return cavro.Schema(schema, options=options)

    def _read(self, data: bytes, writer: Any, reader: Any) -> dict[str, Any]:
        body = io.BytesIO(data[HEADER_LEN:])
        try:
            record = fastavro.schemaless_reader(body, writer, reader)
        except (EOFError, ValueError, TypeError, KeyError, IndexError, UnicodeDecodeError,
                struct.error, OverflowError, SchemaResolutionError) as exc:
            raise CorruptMessageError(f"corrupt {self.name} body: {exc!r}") from exc
        if body.read(1):
            raise CorruptMessageError(f"trailing bytes after {self.name} body")
        if not isinstance(record, dict):
            raise CorruptMessageError(f"{self.name} body did not decode to a record")
        return record


def _checked(data: Any) -> bytes:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CorruptMessageError(f"expected bytes, got {type(data).__name__}")
    raw = bytes(data)
    if len(raw) < HEADER_LEN or raw[:2] != MAGIC:
        raise CorruptMessageError("not Avro single-object encoding (missing C3 01 magic or short header)")
    return raw


def _without_logical_types(schema: Any) -> Any:
    if isinstance(schema, dict):
        # also drops fastavro's "__fastavro_parsed" markers, so the result is parsed anew
        return {
            k: _without_logical_types(v) for k, v in schema.items()
            if k != "logicalType" and not k.startswith("__")
        }
    if isinstance(schema, list):
        return [_without_logical_types(v) for v in schema]
    return schema


@cache
def load_schema(name: str) -> dict[str, Any]:
    """Load a shipped schema by file stem: ``event``, ``incident``, ``anomaly``, ``dead_letter``."""
    text = resources.files("schemas").joinpath("avro", f"{name}.avsc").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


_DEFAULT_STORE = SchemaStore()


def earlier_schemas(name: str) -> list[dict[str, Any]]:
    """The earlier shipped versions of a schema (``avro/history/{name}.N.avsc``), oldest first.

    A schema that gains a field keeps its previous version here, so records written before an
    upgrade (a compacted topic holds them for good) still decode: the decoder finds their
    writer schema by fingerprint and resolves it, filling the new fields' defaults."""
    folder = resources.files("schemas").joinpath("avro", "history")
    found = [f for f in folder.iterdir() if f.name.startswith(f"{name}.") and f.name.endswith(".avsc")]
    found.sort(key=lambda f: int(f.name[len(name) + 1:-len(".avsc")]))
    return [json.loads(f.read_text("utf-8")) for f in found]


@cache
def codec_for(name: str) -> AvroCodec:
    """The process-wide codec for a shipped schema (all share one :class:`SchemaStore`); the
    schema's earlier versions are registered too, as writers it can read."""
    for old in earlier_schemas(name):
        _DEFAULT_STORE.register(old)
    return AvroCodec(load_schema(name), _DEFAULT_STORE)
