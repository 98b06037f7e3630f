"""Batch models behind the streaming contract: a bounded window of points, refit every few.

A batch model (PyOD's isolation forest, a small autoencoder) cannot fold in one
point at a time.  :class:`MicroBatchDetector` gives it the :class:`models.base.Detector`
API: ``learn_one`` appends the point to a window of the last ``window`` points and
refits the model on that window once ``min_samples`` points are there, then again
after every ``refit_every`` learned points; ``score_one`` scores against the last
fit only, so it is 0.0 until the first one.  The refit runs inside ``learn_one``
and costs one batch fit; between refits learning is an append.

Feature dicts map onto matrix columns in the order the keys first appeared.  A
new key gets a column at the next refit (until then ``score_one`` ignores it); a
key absent from the whole window loses its column at the refit, so keys that
come and go never grow the model.  A feature missing from a point reads 0.0.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import numpy.typing as npt

from models.base import Features, finite
from models.state import DataState, Document, StateError, integer, number, text_keys

Matrix = npt.NDArray[np.float64]


class MicroBatchDetector(DataState):
    """Window, column bookkeeping and refit schedule shared by the batch detectors.

    Subclasses call ``super().__init__`` with the schedule and implement
    :meth:`_fit` (fit on a ``(rows, columns)`` matrix) and :meth:`_score` (score
    one row; larger is more anomalous).  Only the watched ``features`` (all when
    None) with finite values are used; a point with none of them scores 0.0 and
    is not learned.  ``score_one`` is wrapped in :func:`models.base.finite`.
    """

    def __init__(
        self,
        window: int,
        min_samples: int,
        refit_every: int,
        features: tuple[str, ...] | None,
        seed: int,
    ) -> None:
        if not 2 <= min_samples <= window:
            raise ValueError(f"need 2 <= min_samples <= window, got {min_samples} and {window}")
        if refit_every < 1:
            raise ValueError(f"refit_every must be positive, got {refit_every}")
        self.window = window
        self.min_samples = min_samples
        self.refit_every = refit_every
        self.features = features
        self.seed = seed
        self._rows: deque[Features] = deque(maxlen=window)
        self._order: dict[str, None] = {}  # every key in the window, first appearance first
        self._columns: tuple[str, ...] = ()  # the keys of the last fit, in matrix order
        self._pending = 0  # points learned since the last fit
        self._fits = 0

    def _dump_state(self) -> Document:
        """The window as data (rows of numbers), the bookkeeping, and ``_dump_model``."""
        return {
            "rows": [dict(row) for row in self._rows],
            "order": list(self._order),
            "columns": list(self._columns),
            "pending": self._pending,
            "fits": self._fits,
            "model": self._dump_model() if self._fits else None,
        }

    def _load_state(self, state: Document) -> None:
        rows = [{str(k): number(v) for k, v in text_keys(row).items()} for row in state["rows"]]
        if len(rows) > self.window:
            raise StateError(f"{len(rows)} saved rows for a window of {self.window}")
        order, columns = state["order"], state["columns"]
        if not all(isinstance(k, str) for k in [*order, *columns]):
            raise StateError("feature names are not strings")
        self._rows = deque(rows, maxlen=self.window)
        self._order = dict.fromkeys(order)
        self._columns = tuple(columns)
        self._pending = integer(state["pending"])
        self._fits = integer(state["fits"])
        if self._fits:
            self._load_model(text_keys(state["model"]))

    def _dump_model(self) -> Document:
        """The last fit's parameters as data (arrays of numbers, never an estimator object)."""
        raise NotImplementedError

    def _load_model(self, state: Document) -> None:
        """Restore what :meth:`_dump_model` wrote; raise :class:`StateError` when it does not fit."""
        raise NotImplementedError

    @property
    def fits(self) -> int:
        """How many times the model was refit."""
        return self._fits

    @property
    def columns(self) -> tuple[str, ...]:
        """The feature keys of the last fit, in matrix column order."""
        return self._columns

    def _select(self, x: Features) -> Features:
        keys = x if self.features is None else [k for k in self.features if k in x]
        return {k: float(x[k]) for k in keys if math.isfinite(x[k])}

    def _fit(self, matrix: Matrix, columns: tuple[str, ...]) -> None:
        """Fit the model on ``matrix``; ``self.columns`` still names the previous fit's."""
        raise NotImplementedError

    def _score(self, row: Matrix) -> float:
        """Score one row laid out like the last fit's matrix."""
        raise NotImplementedError

    def learn_one(self, x: Features) -> None:
        selected = self._select(x)
        if not selected:
            return
        self._rows.append(selected)
        for key in selected:
            self._order.setdefault(key, None)
        self._pending += 1
        due = self._fits == 0 or self._pending >= self.refit_every
        if due and len(self._rows) >= self.min_samples:
            self._refit()

    def _refit(self) -> None:
        present: set[str] = set().union(*self._rows)
        self._order = {k: None for k in self._order if k in present}
        columns = tuple(self._order)
        matrix = np.array([[row.get(k, 0.0) for k in columns] for row in self._rows], dtype=np.float64)
        self._fit(matrix, columns)
        self._columns = columns
        self._pending = 0
        self._fits += 1

    def score_one(self, x: Features) -> float:
        if self._fits == 0:
            return 0.0
        selected = self._select(x)
        if not selected:
            return 0.0
        row = np.array([selected.get(k, 0.0) for k in self._columns], dtype=np.float64)
        return finite(self._score(row))
