"""Online quantile filter (adaptive thresholds) and score calibration."""

from __future__ import annotations

import math
from collections import deque
from itertools import islice

from models.rolling import RollingMoments, RollingWindow
from models.state import DataState, Document, StateError, floats, text_keys


class QuantileFilter(DataState):
    """The ``q`` quantile of the last ``window`` values, exact, O(window) per update.

    ``value()`` is ``default`` until ``min_samples`` values were seen, so callers
    get a conservative threshold while the baseline forms.
    """

    def __init__(
        self, q: float = 0.99, window: int = 2000, min_samples: int = 50, default: float = 1.0
    ) -> None:
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"q must be in [0, 1], got {q}")
        self.q = q
        self.window = window
        self.min_samples = min_samples
        self.default = default
        self._values = RollingWindow(window)

    STATE_FORMAT = "seismo.quantile_filter"

    def _dump_state(self) -> Document:
        return {"values": self._values.dump()}

    def _load_state(self, state: Document) -> None:
        values = RollingWindow(self.window)
        values.load(text_keys(state["values"]))
        self._values = values

    def update(self, value: float) -> None:
        self._values.push(value)

    def value(self) -> float:
        if len(self._values) < self.min_samples:
            return self.default
        return self._values.quantile(self.q)


_SQRT2 = math.sqrt(2.0)


def gaussian_surprise(z: float) -> float:
    """``-log10 P(Z > z)`` for a standard normal Z, finite for every finite z."""
    if z < 8.0:
        return -math.log10(max(0.5 * math.erfc(z / _SQRT2), 1e-300))
    # Mills-ratio asymptote: P(Z > z) ~ phi(z) / z, exact to <2% here.
    return (z * z / 2.0 + math.log(z * math.sqrt(2.0 * math.pi))) / math.log(10.0)


class Calibrator(DataState):
    """Map a detector's raw score onto [0, 1] as an anomaly *likelihood*.

    Like the anomaly likelihood of Numenta's HTM detector: the mean of the last
    ``short_window`` raw scores is compared with the mean and deviation of that
    moving average over the last ``long_window`` points; the Gaussian tail
    probability ``p`` gives the surprise ``s = -log10(p)`` and the calibrated score
    ``s / (s + half)``, so 0.5 means ``p = 10**-half`` and the score never
    saturates (ranks stay distinct for a threshold sweep).  It is 0.0 until ``min_samples``
    averages were seen.  Works for any raw scale, so members need no hand scale.
    ``calibrate`` is pure; ``update`` absorbs the raw score.
    """

    def __init__(
        self,
        short_window: int = 10,
        long_window: int = 2000,
        min_samples: int = 100,
        min_std: float = 1e-3,
        half: float = 5.0,
    ) -> None:
        self.short_window = short_window
        self.long_window = long_window
        self.min_samples = min_samples
        self.min_std = min_std
        self.half = half
        self._recent: deque[float] = deque(maxlen=short_window)
        self._averages = RollingMoments(long_window)  # only its mean and deviation are read
        self._last: tuple[float, float] | None = None  # (raw, average) last computed, not state

    STATE_FORMAT = "seismo.calibrator"

    def _dump_state(self) -> Document:
        return {"recent": list(self._recent), "averages": self._averages.dump()}

    def _load_state(self, state: Document) -> None:
        recent = floats(state["recent"])
        if len(recent) > self.short_window:
            raise StateError(f"{len(recent)} recent scores for a window of {self.short_window}")
        averages = RollingMoments(self.long_window)
        averages.load(text_keys(state["averages"]))
        self._recent = deque(recent, maxlen=self.short_window)
        self._averages = averages
        self._last = None

    def _average_with(self, raw: float) -> float:
        # the same left-to-right sum as over a copy of the window with ``raw`` appended
        # (bit for bit), without the copy; ``update`` reuses what ``calibrate`` computed
        last = self._last
        if last is not None and last[0] == raw:
            return last[1]
        start = 1 if len(self._recent) == self.short_window else 0
        average = (sum(islice(self._recent, start, None)) + raw) / (len(self._recent) - start + 1)
        self._last = (raw, average)
        return average

    def calibrate(self, raw: float) -> float:
        averages = self._averages
        n = len(averages._fifo)
        if n < self.min_samples:
            return 0.0
        average = self._average_with(raw)
        # RollingMoments.mean and .std inlined (the same expressions)
        mean = averages._sum / n if n else 0.0
        if n < 2:
            std = 0.0
        else:
            m = averages._sum / n
            std = math.sqrt(max(averages._sumsq / n - m * m, 0.0))
        spread = max(std, self.min_std * max(1.0, abs(mean)))
        surprise = gaussian_surprise((average - mean) / spread)
        return surprise / (surprise + self.half)

    def update(self, raw: float) -> None:
        average = self._average_with(raw)
        self._last = None
        self._recent.append(raw)
        self._averages.push(average)
