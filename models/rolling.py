"""Bounded rolling windows with order statistics, shared by the univariate detectors."""

from __future__ import annotations

import bisect
import math
from collections import deque


class RollingWindow:
    """The last ``size`` values, kept both in arrival order and sorted.

    Insertion is O(size) (list insert), which is cheap for the few hundred points
    a baseline holds.  Order statistics are exact over the window.
    """

    def __init__(self, size: int) -> None:
        if size < 2:
            raise ValueError("a rolling window needs at least 2 slots")
        self.size = size
        self._fifo: deque[float] = deque()
        self._sorted: list[float] = []
        self._sum = 0.0
        self._sumsq = 0.0

    def __len__(self) -> int:
        return len(self._fifo)

    def push(self, value: float) -> None:
        """Append ``value``, evicting the oldest one when the window is full."""
        if len(self._fifo) == self.size:
            old = self._fifo.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, old)]
            self._sum -= old
            self._sumsq -= old * old
        self._fifo.append(value)
        bisect.insort(self._sorted, value)
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
        return self.quantile(0.5)

    def mad(self) -> float:
        """Median absolute deviation from the median (O(size))."""
        if not self._sorted:
            return 0.0
        med = self.median()
        deviations = sorted(abs(v - med) for v in self._sorted)
        mid = len(deviations) // 2
        if len(deviations) % 2:
            return deviations[mid]
        return 0.5 * (deviations[mid - 1] + deviations[mid])

    def values(self) -> list[float]:
        return list(self._fifo)


MAX_SCORE = 1e6  # every univariate score is capped here so it stays finite


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
