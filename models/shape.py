"""Contextual novelty of a series: how far its latest stretch is from every earlier stretch.

A point is judged in its context: the window of the last ``length`` values ending at it
is compared with every earlier window of the same length (a sliding bank of the last
``bank`` of them, none overlapping the current one), and the score is the distance to
the nearest.  A shape the series has shown before scores low wherever it happens; a
level, a rhythm or a transition it has never shown scores high, even when every single
value is ordinary (the "discord" of time-series data mining, Keogh et al. 2005; the
contextual detectors that lead the NAB scoreboard score the same question).
"""

from __future__ import annotations

import math
from array import array

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from models.base import Features
from models.features import VALUE
from models.state import DataState, Document, StateError, as_array, pack, unpack


class NearestWindow(DataState):
    """Root-mean-square distance from the latest window to its nearest earlier window.

    ``score_one(x)`` takes ``x[feature]`` as the newest value of the window (the other
    ``length - 1`` values are the last ones learned) and returns the distance in the
    series' own units, 0.0 until ``min_windows`` earlier windows exist or when ``x`` has
    no finite ``feature``; calibrate it per series (the ensemble does).  Only the last
    ``bank + 2 * length - 2`` values are kept, with the squared distance of the current
    window to each earlier one (the distance profile), which a new value updates in
    O(bank) (the streaming form of the matrix profile); both are the state, as packed
    doubles.  Deterministic: ``seed`` is kept for the shared estimator API.
    """

    STATE_FORMAT = "seismo.nearest_window"

    def __init__(
        self, length: int = 16, bank: int = 1000, min_windows: int = 100, feature: str = VALUE, seed: int = 0
    ) -> None:
        if length < 2 or bank < 1 or not 1 <= min_windows <= bank:
            got = f"length {length}, min_windows {min_windows}, bank {bank}"
            raise ValueError(f"need length >= 2 and 1 <= min_windows <= bank, got {got}")
        self.length = length
        self.bank = bank
        self.min_windows = min_windows
        self.feature = feature
        self.seed = seed
        self._values = array("d")
        self._profile: npt.NDArray[np.float64] = np.zeros(0)
        self._next: tuple[float, npt.NDArray[np.float64]] | None = None  # last profile computed, for learn

    @property
    def capacity(self) -> int:
        return self.bank + 2 * self.length - 2

    def _dump_state(self) -> Document:
        return {"values": pack(self._values), "profile": pack(self._profile)}

    def _load_state(self, state: Document) -> None:
        values, profile = unpack(state["values"]), unpack(state["profile"])
        if len(values) > self.capacity:
            raise StateError(f"{len(values)} saved values for a bank of {self.capacity}")
        if len(profile) != max(len(values) - 2 * self.length + 1, 0):
            raise StateError(f"a distance profile of {len(profile)} for {len(values)} values")
        if not (np.isfinite(values).all() and np.isfinite(profile).all()):
            raise StateError("a saved value is not finite")
        self._values, self._profile, self._next = as_array(values), profile, None

    def _profile_with(self, value: float) -> npt.NDArray[np.float64]:
        """Squared distances from the window ending at ``value`` to every earlier window."""
        n, length = len(self._values), self.length
        values = np.frombuffer(self._values, dtype=np.float64)
        if n < 2 * length - 1:  # no earlier window yet
            return np.zeros(0)
        if len(self._profile) != n - 2 * length + 1:  # the first windows: computed outright
            query = np.append(values[n - length + 1 :], value)
            windows = sliding_window_view(values[: n - length + 1], length)
            out: npt.NDArray[np.float64] = np.sum((windows - query) ** 2, axis=1)
            return out
        # window ending at e' = window ending at e' - 1, plus its new pair, minus its oldest
        first = values[:length] - np.append(values[n - length + 1 :], value)
        enters = values[length : n - length + 1] - value
        enters *= enters
        leaves = values[: n - 2 * length + 1] - values[n - length]
        leaves *= leaves
        out = np.empty(n - 2 * length + 2)
        out[0] = first @ first
        np.add(self._profile, enters, out=out[1:])
        out[1:] -= leaves
        return out

    def score_one(self, x: Features) -> float:
        value = x.get(self.feature)
        if value is None or not math.isfinite(value):
            return 0.0
        profile = self._profile_with(value)
        self._next = (value, profile)
        if len(profile) < self.min_windows:
            return 0.0
        return math.sqrt(max(float(profile.min()), 0.0) / self.length)

    def learn_one(self, x: Features) -> None:
        value = x.get(self.feature)
        if value is None or not math.isfinite(value):
            return
        cached = self._next
        profile = cached[1] if cached is not None and cached[0] == value else self._profile_with(value)
        self._next = None
        self._values.append(value)
        if len(self._values) > self.capacity:
            self._values.pop(0)
            profile = profile[1:]  # the oldest window lost its first value
        self._profile = profile
