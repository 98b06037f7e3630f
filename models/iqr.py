"""Tukey fences over a rolling window: how far outside ``[Q1 - k*IQR, Q3 + k*IQR]``."""

from __future__ import annotations

import math

from models.base import Features, PickleStateMixin
from models.robust_zscore import MAX_SCORE
from models.rolling import RollingWindow


class IQRDetector(PickleStateMixin):
    """Per-feature distance beyond the Tukey fences, in units of the IQR.

    ``score_one`` is 0.0 inside the fences (and before ``min_samples`` values of a
    feature were learned) and grows linearly outside; it is the maximum over the
    watched features and capped at ``MAX_SCORE``.
    """

    def __init__(
        self,
        window: int = 256,
        k: float = 1.5,
        features: tuple[str, ...] | None = None,
        min_samples: int = 32,
        rel_floor: float = 0.01,
        seed: int = 0,
    ) -> None:
        self.window = window
        self.k = k
        self.features = features
        self.min_samples = min_samples
        self.rel_floor = rel_floor
        self.seed = seed
        self._windows: dict[str, RollingWindow] = {}

    def _keys(self, x: Features) -> list[str]:
        if self.features is None:
            return list(x)
        return [k for k in self.features if k in x]

    def feature_scores(self, x: Features) -> dict[str, float]:
        out: dict[str, float] = {}
        for key in self._keys(x):
            win = self._windows.get(key)
            value = x[key]
            if win is None or len(win) < self.min_samples or not math.isfinite(value):
                continue
            q1, q3 = win.quantile(0.25), win.quantile(0.75)
            spread = win.quantile(1.0) - win.quantile(0.0)
            iqr = max(q3 - q1, self.rel_floor * spread, 1e-9, 1e-6 * abs(q1))
            low, high = q1 - self.k * iqr, q3 + self.k * iqr
            beyond = max(low - value, value - high, 0.0)
            out[key] = min(beyond / iqr, MAX_SCORE)
        return out

    def score_one(self, x: Features) -> float:
        return max(self.feature_scores(x).values(), default=0.0)

    def learn_one(self, x: Features) -> None:
        for key in self._keys(x):
            value = x[key]
            if not math.isfinite(value):
                continue
            win = self._windows.get(key)
            if win is None:
                win = self._windows[key] = RollingWindow(self.window)
            win.push(value)
