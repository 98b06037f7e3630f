"""Robust z-score: distance from a rolling median in units of the rolling MAD."""

from __future__ import annotations

import math

from models.base import Features, PickleStateMixin
from models.rolling import RollingWindow

_MAD_TO_SIGMA = 1.4826
MAX_SCORE = 1e6


def robust_scale(window: RollingWindow, mad: float, rel_floor: float) -> float:
    """A strictly positive spread for ``window``: MAD, else a fraction of the range."""
    spread = _MAD_TO_SIGMA * mad
    value_range = window.quantile(1.0) - window.quantile(0.0)
    floor = max(rel_floor * value_range, 1e-9, 1e-6 * abs(window.median()))
    return max(spread, floor)


class RobustZScore(PickleStateMixin):
    """Per-feature ``|x - median| / (1.4826 * MAD)`` over the last ``window`` points.

    ``score_one`` returns the largest z over the watched features (all features
    when ``features`` is None), 0.0 until a feature has ``min_samples`` values, and
    is capped at ``MAX_SCORE`` so it is always finite.  The MAD is recomputed every
    ``refresh`` learned points (it is O(window)); the median is always exact.
    """

    def __init__(
        self,
        window: int = 256,
        features: tuple[str, ...] | None = None,
        min_samples: int = 32,
        refresh: int = 8,
        rel_floor: float = 0.01,
        seed: int = 0,
    ) -> None:
        self.window = window
        self.features = features
        self.min_samples = min_samples
        self.refresh = refresh
        self.rel_floor = rel_floor
        self.seed = seed  # deterministic already; kept for the shared estimator API
        self._windows: dict[str, RollingWindow] = {}
        self._mad: dict[str, float] = {}
        self._seen: dict[str, int] = {}

    def _keys(self, x: Features) -> list[str]:
        if self.features is None:
            return list(x)
        return [k for k in self.features if k in x]

    def feature_scores(self, x: Features) -> dict[str, float]:
        """The z of each watched feature present in ``x`` with enough history."""
        out: dict[str, float] = {}
        for key in self._keys(x):
            win = self._windows.get(key)
            value = x[key]
            if win is None or len(win) < self.min_samples or not math.isfinite(value):
                continue
            scale = robust_scale(win, self._mad.get(key, 0.0), self.rel_floor)
            out[key] = min(abs(value - win.median()) / scale, MAX_SCORE)
        return out

    def baseline(self, key: str) -> float | None:
        """The median the feature ``key`` is compared with, if there is one yet."""
        win = self._windows.get(key)
        return win.median() if win is not None and len(win) else None

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
            seen = self._seen.get(key, 0) + 1
            self._seen[key] = seen
            if seen % self.refresh == 0 or seen <= self.min_samples:
                self._mad[key] = win.mad()
