"""Bounded rolling windows (moments; order statistics), shared by the univariate detectors."""

from __future__ import annotations

import bisect
import math
from array import array
from typing import Any

import numpy as np
from mypy_extensions import mypyc_attr

from models.state import StateError, as_array, number, pack, text_keys, unpack


class RollingMoments:
    """The last ``size`` values in arrival order, with their running mean and deviation.

    Kept in an ``array('d')``: eviction is an O(size) memmove, cheap for the few
    thousand points a baseline holds, and saving a window is a copy of raw doubles
    (the scorer saves every touched series at every checkpoint).
    """

    def __init__(self, size: int = 2) -> None:  # the default lets pickle rebuild a compiled one
        if size < 2:
            raise ValueError("a rolling window needs at least 2 slots")
        self.size = size
        self._fifo = array("d")
        self._sum = 0.0
        self._sumsq = 0.0

    def __len__(self) -> int:
        return len(self._fifo)

    def dump(self) -> dict[str, Any]:
        """The values (packed doubles) and the running sums as they are, so a restored
        window continues bit for bit; the size is the owner's hyperparameter."""
        return {"values": pack(self._fifo), "sum": self._sum, "sumsq": self._sumsq}

    def load(self, state: dict[str, Any]) -> None:
        """Replace the contents with those of :meth:`dump`; raises :class:`StateError`."""
        values = unpack(state["values"])
        if len(values) > self.size:
            raise StateError(f"a window of {self.size} cannot hold {len(values)} saved values")
        if not np.isfinite(values).all():
            raise StateError("a saved window holds a value that is not finite")
        self._fifo = as_array(values)
        self._sum = number(state["sum"])
        self._sumsq = number(state["sumsq"])

    def push(self, value: float) -> None:
        """Append ``value``, evicting the oldest one when the window is full."""
        if len(self._fifo) == self.size:
            old = self._fifo.pop(0)
            self._sum -= old
            self._sumsq -= old * old
        self._fifo.append(value)
        self._sum += value
        self._sumsq += value * value

    def last(self) -> float:
        return self._fifo[-1]

    def mean(self) -> float:
        return self._sum / len(self._fifo) if self._fifo else 0.0

    def std(self) -> float:
        n = len(self._fifo)
        if n < 2:
            return 0.0
        mean = self._sum / n
        return math.sqrt(max(self._sumsq / n - mean * mean, 0.0))

    def values(self) -> list[float]:
        return list(self._fifo)


class RollingWindow(RollingMoments):
    """A :class:`RollingMoments` that also keeps its values sorted: exact order statistics."""

    def __init__(self, size: int = 2) -> None:  # the default lets pickle rebuild a compiled one
        super().__init__(size)
        self._sorted = array("d")

    def load(self, state: dict[str, Any]) -> None:
        # The sorted copy is not saved (it would double the state): one numpy sort
        # of at most ``size`` values rebuilds it, and equal values are equal in any order.
        super().load(state)
        self._sorted = as_array(np.sort(np.frombuffer(self._fifo, dtype=np.float64)))

    def push(self, value: float) -> None:
        """Append ``value``, evicting the oldest one when the window is full."""
        # RollingMoments.push inlined (the same sums in the same order): every learned point
        # of every watched feature comes through here
        fifo = self._fifo
        if len(fifo) == self.size:
            old = fifo.pop(0)
            del self._sorted[bisect.bisect_left(self._sorted, old)]
            self._sum -= old
            self._sumsq -= old * old
        fifo.append(value)
        self._sum += value
        self._sumsq += value * value
        bisect.insort(self._sorted, value)

    def quantile(self, q: float) -> float:
        """Linear-interpolated quantile ``q`` in [0, 1]; 0.0 for an empty window."""
        values = self._sorted
        if not values:
            return 0.0
        pos = q * (len(values) - 1)
        lo = math.floor(pos)
        hi = min(lo + 1, len(values) - 1)
        return values[lo] + (values[hi] - values[lo]) * (pos - lo)

    def count_at_least(self, value: float) -> int:
        """How many values in the window are ``>= value`` (O(log size))."""
        return len(self._sorted) - bisect.bisect_left(self._sorted, value)

    def median(self) -> float:
        """``quantile(0.5)``, bit for bit, without the general interpolation's work."""
        values = self._sorted
        n = len(values)
        if not n:
            return 0.0
        lo = (n - 1) // 2
        if n % 2:
            return values[lo]
        return values[lo] + (values[lo + 1] - values[lo]) * 0.5

    def value_range(self) -> float:
        """``quantile(1.0) - quantile(0.0)``: largest minus smallest value (0.0 when empty)."""
        values = self._sorted
        return values[-1] - values[0] if values else 0.0

    def mad(self) -> float:
        """Median absolute deviation from the median (O(log size)).

        The deviations ``|v - median|`` of the values below the median, nearest first,
        and of the others are two sorted sequences: their middle order statistics are
        found by bisection (:func:`_kth_deviations`), the same floats a sort of every
        deviation would give, without computing them all."""
        values = self._sorted
        n = len(values)
        if not n:
            return 0.0
        med = self.median()
        mid = n // 2
        if n % 2:
            return _kth_deviations(values, med, bisect.bisect_left(values, med), mid)[1]
        below, at = _kth_deviations(values, med, bisect.bisect_left(values, med), mid)
        return 0.5 * (below + at)


def _kth_deviations(values: array[float], med: float, split: int, k: int) -> tuple[float, float]:
    """The ``k - 1``-th and ``k``-th smallest (from 0) of ``|v - med|`` over the sorted
    ``values`` (the first is meaningless when ``k == 0``).

    ``values[:split]`` are below ``med`` (their deviations grow leftwards: ``a``), the rest
    are not (theirs grow rightwards: ``b``).  The ``k + 1`` smallest of the two sorted
    sequences are ``a[:i]`` and ``b[:k + 1 - i]`` for the least ``i`` with
    ``a[i] >= b[k - i]``, found by bisection; the k-th is the larger of their last ones,
    the (k-1)-th the larger of the other last one and the one before the k-th.  Rounding
    is monotone, so the computed deviations are sorted as the values are."""
    lo, hi = max(0, k + 1 - (len(values) - split)), min(k + 1, split)
    while lo < hi:
        i = (lo + hi) // 2
        if abs(values[split - 1 - i] - med) < abs(values[split + k - i] - med):
            lo = i + 1
        else:
            hi = i
    j = k + 1 - lo  # a[:lo] and b[:j]: a[i] is values[split - 1 - i], b[i] is values[split + i]
    a_last = abs(values[split - lo] - med) if lo else -1.0
    b_last = abs(values[split + j - 1] - med) if j else -1.0
    if a_last >= b_last:  # the k-th is a's: the (k-1)-th is b's last or the one before in a
        a_prev = abs(values[split - lo + 1] - med) if lo > 1 else -1.0
        return max(a_prev, b_last), a_last
    b_prev = abs(values[split + j - 2] - med) if j > 1 else -1.0
    return max(a_last, b_prev), b_last


MAX_SCORE = 1e6  # every univariate score is capped here so it stays finite


@mypyc_attr(allow_interpreted_subclasses=True)  # RobustZScore and IQRDetector mix in DataState
class RollingFeatureDetector:
    """One :class:`RollingWindow` per watched feature; subclasses score one value against it.

    Subclasses set ``window``, ``features``, ``min_samples`` and ``_windows`` in
    ``__init__`` and implement :meth:`_feature_score`; :meth:`_learned` runs after
    each push.  A feature scores only once its window holds ``min_samples`` values,
    and non-finite values are neither scored nor learned.
    """

    window: int
    features: tuple[str, ...] | None
    min_samples: int
    _windows: dict[str, RollingWindow]

    def _keys(self, x: dict[str, float]) -> list[str]:
        if self.features is None:
            return list(x)
        return [k for k in self.features if k in x]

    def _feature_score(self, key: str, win: RollingWindow, value: float) -> float:
        raise NotImplementedError

    def _dump_windows(self) -> dict[str, Any]:
        return {key: win.dump() for key, win in self._windows.items()}

    def _load_windows(self, state: object) -> dict[str, RollingWindow]:
        windows: dict[str, RollingWindow] = {}
        for key, doc in text_keys(state).items():
            win = windows[key] = RollingWindow(self.window)
            win.load(text_keys(doc))
        return windows

    def _learned(self, key: str, win: RollingWindow) -> None:
        """Hook after ``win`` took a new value of ``key``."""

    def feature_scores(self, x: dict[str, float]) -> dict[str, float]:
        """The score of each watched feature present in ``x`` with enough history."""
        out: dict[str, float] = {}
        for key in self._keys(x):
            win = self._windows.get(key)
            value = x[key]
            if win is None or len(win) < self.min_samples or not math.isfinite(value):
                continue
            out[key] = min(self._feature_score(key, win, value), MAX_SCORE)
        return out

    def score_one(self, x: dict[str, float]) -> float:
        return max(self.feature_scores(x).values(), default=0.0)

    def learn_one(self, x: dict[str, float]) -> None:
        for key in self._keys(x):
            value = x[key]
            if not math.isfinite(value):
                continue
            win = self._windows.get(key)
            if win is None:
                win = self._windows[key] = RollingWindow(self.window)
            win.push(value)
            self._learned(key, win)
