"""Errors raised by the schema codec.

A caller that gets any :class:`SchemaError` while decoding holds a poison
message: it cannot become valid by retrying, so it belongs in the dead-letter
topic with ``str(error)`` as the reason.
"""

from __future__ import annotations


class SchemaError(Exception):
    """Base class of every error raised by :mod:`schemas`."""


class UnknownSchemaError(SchemaError):
    """The message names a schema fingerprint (or registry id) this process does not know.

    Operator: the writer uses a newer schema; deploy the reader with that schema
    registered, then replay the dead letters.
    """


class CorruptMessageError(SchemaError):
    """The bytes are not a valid encoding: bad magic, truncated or garbled payload."""


class EncodeError(SchemaError):
    """A record does not match the writer schema; a programming error in the caller."""
