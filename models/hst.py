"""river's Half-Space Trees on min-max scaled features."""

from __future__ import annotations

import math
from typing import Any

from models.base import Features, PickleStateMixin


class HSTDetector(PickleStateMixin):
    """Half-Space Trees (Tan et al. 2011) behind an online min-max scaler.

    ``score_one`` is in [0, 1] (river's normalised mass score, 0.0 until the
    first reference window of ``window_size`` points is complete).  Features
    outside ``features`` (when given) are ignored; river copes with keys that
    come and go; a point with none of them scores 0.0 and is not learned.  river
    is imported when the first detector is built.
    """

    def __init__(
        self,
        n_trees: int = 10,
        height: int = 8,
        window_size: int = 250,
        features: tuple[str, ...] | None = None,
        seed: int = 0,
    ) -> None:
        from river import anomaly, preprocessing

        self.n_trees = n_trees
        self.height = height
        self.window_size = window_size
        self.features = features
        self.seed = seed
        self._scaler: Any = preprocessing.MinMaxScaler()
        self._trees: Any = anomaly.HalfSpaceTrees(
            n_trees=n_trees, height=height, window_size=window_size, seed=seed
        )

    def _select(self, x: Features) -> Features:
        keys = x if self.features is None else [k for k in self.features if k in x]
        return {k: x[k] for k in keys if math.isfinite(x[k])}

    def _scaled(self, x: Features) -> Features:
        scaled: dict[str, float] = self._scaler.transform_one(self._select(x))
        return {k: min(max(v, 0.0), 1.0) for k, v in scaled.items()}

    def score_one(self, x: Features) -> float:
        scaled = self._scaled(x)
        if not scaled:  # river cannot place a point with no features
            return 0.0
        score = float(self._trees.score_one(scaled))
        return score if math.isfinite(score) else 0.0

    def learn_one(self, x: Features) -> None:
        selected = self._select(x)
        if not selected:
            return
        self._scaler.learn_one(selected)
        self._trees.learn_one(self._scaled(x))
