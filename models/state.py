"""Learned state as data: a named, versioned JSON document of numbers, never code.

Detector state travels through shared stores (Redis, Kafka), so it is decoded
with ``json`` only: a blob cannot name a class or a function, and whatever
bytes an attacker writes there can at worst be refused.  Every stateful class
(:class:`DataState`) declares

* ``STATE_FORMAT`` — a stable name for its layout, *not* its class path, so
  renaming or moving the class keeps every saved state readable;
* ``STATE_VERSION`` — bumped when the layout changes, with a function in
  ``STATE_MIGRATIONS`` that turns a document of the previous version into the
  next one (a state older than the oldest migration is refused, not guessed);
* ``_dump_state`` / ``_load_state`` — the layout itself: plain JSON values, and
  numeric windows as hex of little-endian doubles (:func:`pack`, :func:`unpack`).

A document is the *envelope* ``{"format": ..., "version": ..., "state": {...}}``;
nested models (an ensemble's members) nest their own envelopes, so each part
migrates on its own.  Anything that does not decode, or names another format,
or a version this code does not know, raises :class:`StateError`: the caller
logs it and starts that model afresh.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

Document = dict[str, Any]
Migration = Callable[[Document], Document]


class StateError(ValueError):
    """A saved state that cannot be restored (undecodable, another format, unknown version).

    Nothing of it was executed.  The caller discards the model it was loading
    into and starts a fresh one; the operator sees the logged reason.
    """


def pack(values: array[float] | npt.NDArray[np.float64] | list[float]) -> str:
    """Doubles as hex of their little-endian bytes (exact, 16 characters a value).

    Hex rather than base64: a third larger, but it decodes three times faster
    (``bytes.fromhex``), and restoring thousands of states is bound by decoding."""
    return np.asarray(values, dtype="<f8").tobytes().hex()


def unpack(text: object) -> npt.NDArray[np.float64]:
    """The doubles :func:`pack` wrote, as a numpy copy.  Raises :class:`StateError`."""
    if not isinstance(text, str):
        raise StateError(f"expected packed doubles, got {type(text).__name__}")
    try:
        raw = bytes.fromhex(text)
    except ValueError as exc:
        raise StateError(f"packed doubles are not hex: {exc}") from None
    if len(raw) % 8:
        raise StateError(f"packed doubles of {len(raw)} bytes (not a multiple of 8)")
    return np.frombuffer(raw, dtype="<f8").astype(np.float64)


def as_array(values: npt.NDArray[np.float64]) -> array[float]:
    """Doubles into an ``array('d')`` (the rolling windows' storage), in native byte order."""
    out = array("d")
    out.frombytes(np.ascontiguousarray(values, dtype=np.float64).tobytes())
    return out


def pack_matrix(matrix: npt.NDArray[np.float64]) -> Document:
    """A 1-D or 2-D float array with its shape."""
    return {"shape": list(matrix.shape), "data": pack(matrix.ravel())}


def unpack_matrix(doc: object, dims: int) -> npt.NDArray[np.float64]:
    """The array :func:`pack_matrix` wrote; its shape must have ``dims`` dimensions."""
    if not isinstance(doc, dict):
        raise StateError("expected a packed matrix")
    shape = doc.get("shape")
    if not isinstance(shape, list) or len(shape) != dims or not all(
        isinstance(n, int) and n >= 0 for n in shape
    ):
        raise StateError(f"bad matrix shape {shape!r}")
    values = unpack(doc.get("data"))
    if values.size != int(np.prod(shape)):
        raise StateError(f"matrix of shape {shape} holds {values.size} values")
    return values.reshape(shape)


def envelope(fmt: str, version: int, state: Document) -> Document:
    return {"format": fmt, "version": version, "state": state}


def open_envelope(
    doc: object, fmt: str, version: int, migrations: Mapping[int, Migration] | None = None
) -> Document:
    """The ``state`` of ``doc`` migrated to ``version``; raises :class:`StateError`.

    ``migrations[v]`` turns a version ``v`` state into a version ``v + 1`` one.
    """
    if not isinstance(doc, dict):
        raise StateError(f"a saved {fmt} state is a JSON object, got {type(doc).__name__}")
    found = doc.get("format")
    if found != fmt:
        raise StateError(f"expected a {fmt!r} state, found format {found!r}")
    saved = doc.get("version")
    state = doc.get("state")
    if not isinstance(saved, int) or isinstance(saved, bool) or not isinstance(state, dict):
        raise StateError(f"{fmt} state without an integer version and a state object")
    if saved > version:
        raise StateError(f"{fmt} state version {saved} is newer than this code ({version})")
    steps = migrations or {}
    while saved < version:
        step = steps.get(saved)
        if step is None:
            raise StateError(f"no migration of {fmt} state from version {saved} (current {version})")
        state = step(state)
        saved += 1
    return state


def decode(blob: bytes) -> object:
    """Parse a saved blob as JSON (the only decoder state ever meets)."""
    try:
        return json.loads(blob)
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise StateError(f"saved state is not JSON ({exc.__class__.__name__}: {exc})") from None


class DataState:
    """``save_state``/``load_state`` (bytes) and ``to_state``/``from_state`` (JSON documents).

    Subclasses set ``STATE_FORMAT`` (and ``STATE_VERSION``/``STATE_MIGRATIONS``
    when the layout changed) and implement ``_dump_state``/``_load_state`` over
    the learned state only; hyperparameters come from ``__init__``, so a state
    is restored into a detector built with the same arguments.
    ``from_state`` raises :class:`StateError`; after it raised, the instance may
    hold part of the state and must be replaced by a fresh one.
    """

    STATE_FORMAT: ClassVar[str]
    STATE_VERSION: ClassVar[int] = 1
    STATE_MIGRATIONS: ClassVar[Mapping[int, Migration]] = {}

    def _dump_state(self) -> Document:
        raise NotImplementedError

    def _load_state(self, state: Document) -> None:
        raise NotImplementedError

    def to_state(self) -> Document:
        """The learned state as a JSON-ready envelope (format, version, state)."""
        return envelope(self.STATE_FORMAT, self.STATE_VERSION, self._dump_state())

    def from_state(self, doc: object) -> None:
        """Replace the learned state with ``doc`` (from :meth:`to_state`); raises :class:`StateError`."""
        state = open_envelope(doc, self.STATE_FORMAT, self.STATE_VERSION, self.STATE_MIGRATIONS)
        try:
            self._load_state(state)
        except StateError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as exc:
            reason = f"{exc.__class__.__name__}: {exc}"
            raise StateError(f"malformed {self.STATE_FORMAT} state: {reason}") from None

    def save_state(self) -> bytes:
        """:meth:`to_state` as compact UTF-8 JSON."""
        return json.dumps(self.to_state(), separators=(",", ":")).encode()

    def load_state(self, state: bytes) -> None:
        """:meth:`from_state` of the JSON bytes of :meth:`save_state`; raises :class:`StateError`."""
        self.from_state(decode(state))


def floats(values: object) -> list[float]:
    """A JSON list of numbers as floats; raises :class:`StateError` otherwise."""
    if not isinstance(values, list):
        raise StateError("expected a list of numbers")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise StateError(f"expected a number, got {type(v).__name__}")
        out.append(float(v))
    return out


def integer(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise StateError(f"expected an integer, got {type(value).__name__}")
    return value


def number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise StateError(f"expected a number, got {type(value).__name__}")
    return float(value)


def text_keys(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise StateError(f"expected an object, got {type(value).__name__}")
    return value


def nested(state: Document, key: str, target: DataState) -> None:
    """Load the nested envelope ``state[key]`` into ``target``."""
    target.from_state(state[key])
