"""Tukey fences over a rolling window: how far outside ``[Q1 - k*IQR, Q3 + k*IQR]``."""

from __future__ import annotations

from mypy_extensions import mypyc_attr

from models.rolling import RollingFeatureDetector, RollingWindow
from models.state import DataState, Document


@mypyc_attr(allow_interpreted_subclasses=True)  # subclassed by callers
class IQRDetector(RollingFeatureDetector, DataState):
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

    STATE_FORMAT = "seismo.iqr"

    def _dump_state(self) -> Document:
        return {"windows": self._dump_windows()}

    def _load_state(self, state: Document) -> None:
        self._windows = self._load_windows(state["windows"])

    def _feature_score(self, key: str, win: RollingWindow, value: float) -> float:
        q1, q3 = win.quantile(0.25), win.quantile(0.75)
        spread = win.value_range()
        iqr = max(q3 - q1, self.rel_floor * spread, 1e-9, 1e-6 * abs(q1))
        low, high = q1 - self.k * iqr, q3 + self.k * iqr
        return max(low - value, value - high, 0.0) / iqr
