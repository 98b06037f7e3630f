"""A stateless :class:`~stream_processors.runtime.step.Step` for tests of the runtime itself.

It reads one topic and keeps nothing; a test step subclasses it and overrides ``handle`` (and
the state methods when it keeps states), so each test shows only what its step does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from stream_processors.runtime.step import Output, Record


class StatelessStep:
    name = "normalize"

    def __init__(self, source: str) -> None:
        self.source = source

    @property
    def inputs(self) -> list[str]:
        return [self.source]

    def attach(self, load: Callable[[str], dict[str, Any] | None]) -> None:
        return None

    def state_keys(self, records: list[Record]) -> Iterable[str]:
        return ()

    def restore(self, saved: dict[str, dict[str, Any]], wanted: set[str]) -> None:
        return None

    def handle(self, record: Record, out: Output) -> None:
        raise NotImplementedError("a test step says what it does with a record")

    def end_batch(self, out: Output) -> None:
        return None

    def dirty_states(self) -> dict[str, dict[str, Any]]:
        return {}

    def revoked(self) -> None:
        return None
