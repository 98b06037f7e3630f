"""What a step gives the runtime: the :class:`Step` protocol and the :class:`Output` it writes to.

A step is a pure module plus a thin adapter that implements :class:`Step`.  The
runtime (:class:`~stream_processors.runtime.loop.StepRuntime`) owns Kafka, the
state store and the checkpoint; the adapter only

* names the topics it reads (:attr:`Step.inputs`) and the state keys a batch needs
  (:meth:`Step.state_keys`), which the runtime loads in one round trip and hands to
  :meth:`Step.restore`;
* handles one decoded message at a time (:meth:`Step.handle`), writing what it
  produces to :class:`Output`; raising :class:`~stream_processors.exceptions.InvalidEvent`
  sends that message to the dead-letter topic with the reason, and the batch goes on;
* flushes per-batch work (:meth:`Step.end_batch`: e.g. only the last revision of an
  incident touched many times in a batch is sent);
* gives the states it changed since the last checkpoint (:meth:`Step.dirty_states`),
  which the runtime saves *after* every output was acknowledged and *before* it commits
  the input offsets;
* forgets everything on :meth:`Step.revoked` (another worker may own those keys next).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

MAX_OUTPUT_BYTES = 1_000_000 - 4_096
"""The most a step may send in one record: librdkafka's ``message.max.bytes`` (1,000,000) less room
for the record's key and overhead.  A step whose output for an input would be larger dead-letters
that input (``too_large``): the send could never succeed, and the partition would stop on it."""


@dataclass(slots=True)
class Record:
    """One input message as a step sees it (bytes as read; where it came from)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int


@dataclass(slots=True)
class Output:
    """What a step produced for the runtime to send: ``(topic, key, value)`` in order."""

    records: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)
    newest_event_us: int = 0  # event time of the newest input processed (event-time lag)

    def emit(self, topic: str, key: bytes | None, value: bytes) -> None:
        self.records.append((topic, key, value))

    def saw_event_time(self, ts_us: int) -> None:
        if ts_us > self.newest_event_us:
            self.newest_event_us = ts_us


class Step(Protocol):
    """A processing step on the shared runtime.  Called from one thread only."""

    name: str
    """Short name: ``normalize``, ``correlate``, ``score``; names the consumer group and metrics."""

    @property
    def inputs(self) -> list[str]:
        """Topics this step consumes."""

    def attach(self, load: Callable[[str], dict[str, Any] | None]) -> None:
        """Receive the runtime's blocking loader, for a key :meth:`state_keys` could not foresee
        (a record keyed other than by its service)."""

    def state_keys(self, records: list[Record]) -> Iterable[str]:
        """StateStore keys this batch needs that are not loaded yet (may repeat; may be empty)."""

    def restore(self, saved: dict[str, dict[str, Any]], wanted: set[str]) -> None:
        """Take the loaded values; a key in ``wanted`` but not in ``saved`` starts fresh."""

    def handle(self, record: Record, out: Output) -> None:
        """Process one record.  Raises InvalidEvent for a poison message (dead-lettered)."""

    def end_batch(self, out: Output) -> None:
        """Emit what the batch deferred (called after every record of a batch)."""

    def dirty_states(self) -> dict[str, dict[str, Any]]:
        """States changed since the last call, as StateStore values; the runtime saves them."""

    def revoked(self) -> None:
        """Forget every loaded state (after the runtime checkpointed)."""
