"""Robust z-score: distance from a rolling median in units of the rolling MAD."""

from __future__ import annotations

import math

from mypy_extensions import mypyc_attr

from models.base import Features
from models.rolling import MAX_SCORE, RollingFeatureDetector, RollingWindow
from models.state import DataState, Document, integer, number, text_keys

_MAD_TO_SIGMA = 1.4826
__all__ = ["MAX_SCORE", "RobustZScore", "robust_scale"]


def robust_scale(window: RollingWindow, mad: float, rel_floor: float, median: float | None = None) -> float:
    """A strictly positive spread for ``window``: MAD, else a fraction of the range.

    ``median`` is the window's median when the caller has it already."""
    spread = _MAD_TO_SIGMA * mad
    med = window.median() if median is None else median
    floor = max(rel_floor * window.value_range(), 1e-9, 1e-6 * abs(med))
    return max(spread, floor)


@mypyc_attr(allow_interpreted_subclasses=True)  # subclassed by callers
class RobustZScore(RollingFeatureDetector, DataState):
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

    STATE_FORMAT = "seismo.robust_zscore"

    def _dump_state(self) -> Document:
        return {"windows": self._dump_windows(), "mad": dict(self._mad), "seen": dict(self._seen)}

    def _load_state(self, state: Document) -> None:
        windows = self._load_windows(state["windows"])
        mad = {k: number(v) for k, v in text_keys(state["mad"]).items()}
        seen = {k: integer(v) for k, v in text_keys(state["seen"]).items()}
        self._windows, self._mad, self._seen = windows, mad, seen

    def _feature_score(self, key: str, win: RollingWindow, value: float) -> float:
        med = win.median()
        return abs(value - med) / robust_scale(win, self._mad.get(key, 0.0), self.rel_floor, med)

    def score_one(self, x: Features) -> float:
        """``max(feature_scores(x).values(), default=0.0)``, bit for bit, in one pass.

        :meth:`_feature_score` and :func:`robust_scale` inlined (the score step calls this
        for every member at every metric point)."""
        best: float | None = None
        windows, mads, rel_floor, min_samples = self._windows, self._mad, self.rel_floor, self.min_samples
        isfinite = math.isfinite
        for key in x if self.features is None else self.features:
            value = x.get(key)
            if value is None:
                continue
            win = windows.get(key)
            if win is None:
                continue
            values = win._sorted
            n = len(values)
            if n < min_samples or not isfinite(value):
                continue
            if n:  # RollingWindow.median and .value_range
                lo = (n - 1) // 2
                med = values[lo] if n % 2 else values[lo] + (values[lo + 1] - values[lo]) * 0.5
                span = values[-1] - values[0]
            else:
                med = span = 0.0
            spread = _MAD_TO_SIGMA * mads.get(key, 0.0)
            floor = max(rel_floor * span, 1e-9, 1e-6 * abs(med))
            score = min(abs(value - med) / max(spread, floor), MAX_SCORE)
            if best is None or score > best:
                best = score
        return 0.0 if best is None else best

    def learn_one(self, x: Features) -> None:
        windows, seen, refresh, min_samples = self._windows, self._seen, self.refresh, self.min_samples
        isfinite = math.isfinite
        for key in x if self.features is None else self.features:
            value = x.get(key)
            if value is None or not isfinite(value):
                continue
            win = windows.get(key)
            if win is None:
                win = windows[key] = RollingWindow(self.window)
            win.push(value)
            n = seen.get(key, 0) + 1  # _learned
            seen[key] = n
            if n % refresh == 0 or n <= min_samples:
                self._mad[key] = win.mad()

    def baseline(self, key: str) -> float | None:
        """The median the feature ``key`` is compared with, if there is one yet."""
        win = self._windows.get(key)
        return win.median() if win is not None and len(win) else None

    def _learned(self, key: str, win: RollingWindow) -> None:
        seen = self._seen.get(key, 0) + 1
        self._seen[key] = seen
        if seen % self.refresh == 0 or seen <= self.min_samples:
            self._mad[key] = win.mad()
