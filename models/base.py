"""The contract every streaming detector honours, and the state helpers they share.

A detector sees one observation at a time as a ``dict[str, float]`` of features.
``score_one`` never mutates state and never looks ahead; ``learn_one`` folds the
observation into the baseline.  Callers that want "score then learn" (the usual
prequential order) call the two in that order, so a point never scores against a
baseline that already contains it.
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

Features = dict[str, float]


@runtime_checkable
class Detector(Protocol):
    """An online anomaly detector (river-style estimator API).

    Hyperparameters are set only in ``__init__``; all learned state is created
    lazily, so an unfitted detector is cheap and features may appear or vanish
    between calls.  ``score_one`` returns a finite float, larger meaning more
    anomalous; detectors that return a calibrated score say so in their docstring.
    """

    def learn_one(self, x: Features) -> None:
        """Fold ``x`` into the baseline. Never blocks, never raises on new keys."""

    def score_one(self, x: Features) -> float:
        """Score ``x`` against the current baseline without changing it."""

    def save_state(self) -> bytes:
        """The learned state as data (JSON, see :mod:`models.state`), not the hyperparameters."""

    def load_state(self, state: bytes) -> None:
        """Replace the learned state with one produced by ``save_state``.

        Raises :class:`models.state.StateError` for bytes it cannot restore; it never
        executes anything found in them."""

    def to_state(self) -> dict[str, object]:
        """``save_state`` as a JSON-ready document (format name, version, state)."""

    def from_state(self, doc: object) -> None:
        """``load_state`` of a document from ``to_state``; raises ``StateError``."""


def finite(value: float, default: float = 0.0) -> float:
    """Return ``value`` when it is a finite number, else ``default``."""
    return value if math.isfinite(value) else default
