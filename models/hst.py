"""river's Half-Space Trees on min-max scaled features."""

from __future__ import annotations

import math
from typing import Any

from models.base import Features
from models.state import DataState, Document, StateError, integer, number, pack, text_keys, unpack


class HSTDetector(DataState):
    """Half-Space Trees (Tan et al. 2011) behind an online min-max scaler.

    ``score_one`` is in [0, 1] (river's normalised mass score, 0.0 until the
    first reference window of ``window_size`` points is complete).  Features
    outside ``features`` (when given) are ignored; river copes with keys that
    come and go; a point with none of them scores 0.0 and is not learned.  river
    is imported when the first detector is built.

    The state is river's, written out explicitly: the scaler's running minima
    and maxima, and each tree in depth-first order (split features, thresholds,
    left and right masses) with the window counter.  The random generator is not
    saved: river draws from it only to build the trees at the first learned point.
    """

    STATE_FORMAT = "seismo.half_space_trees"

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

    def _dump_state(self) -> Document:
        scaler = {"min": {k: m.get() for k, m in self._scaler.min.items()},
                  "max": {k: m.get() for k, m in self._scaler.max.items()}}
        hst = self._trees
        trees = []
        for tree in hst.trees:
            nodes = list(tree.iter_dfs())
            branches = [n for n in nodes if hasattr(n, "children")]
            trees.append({
                "features": [n.feature for n in branches],
                "thresholds": pack([n.threshold for n in branches]),
                "l_mass": [n.l_mass for n in nodes],
                "r_mass": [n.r_mass for n in nodes],
            })
        return {"scaler": scaler, "trees": trees, "counter": hst.counter, "first_window": hst._first_window}

    def _load_state(self, state: Document) -> None:
        from river import anomaly, preprocessing

        scaler = preprocessing.MinMaxScaler()
        for key, low in text_keys(state["scaler"]["min"]).items():
            scaler.min[key].update(number(low))
        for key, high in text_keys(state["scaler"]["max"]).items():
            scaler.max[key].update(number(high))
        hst: Any = anomaly.HalfSpaceTrees(
            n_trees=self.n_trees, height=self.height, window_size=self.window_size, seed=self.seed
        )
        trees = state["trees"]
        if trees and len(trees) != self.n_trees:
            raise StateError(f"{len(trees)} saved trees for a forest of {self.n_trees}")
        hst.trees = [self._tree(text_keys(t)) for t in trees]
        hst._tree_nodes = [list(t.iter_dfs()) for t in hst.trees]
        hst.counter = integer(state["counter"])
        first = state["first_window"]
        if not isinstance(first, bool):
            raise StateError("first_window is not a boolean")
        hst._first_window = first
        self._scaler, self._trees = scaler, hst

    def _tree(self, doc: Document) -> Any:
        """One complete tree of ``height`` rebuilt from its depth-first lists."""
        from river.tree import padded

        branch_type: Any = padded.PaddedBranch  # river is untyped
        leaf_type: Any = padded.PaddedLeaf

        features, thresholds = doc["features"], unpack(doc["thresholds"])
        l_mass, r_mass = [integer(v) for v in doc["l_mass"]], [integer(v) for v in doc["r_mass"]]
        n_branches = 2**self.height - 1
        if not (len(features) == len(thresholds) == n_branches
                and len(l_mass) == len(r_mass) == 2 * n_branches + 1):
            raise StateError(f"a saved tree is not a complete tree of height {self.height}")
        if not all(isinstance(f, str) for f in features):
            raise StateError("a split feature is not a name")
        node, branch = iter(range(len(l_mass))), iter(range(n_branches))

        def build(depth: int) -> Any:
            i = next(node)
            if depth == self.height:
                return leaf_type(l_mass=l_mass[i], r_mass=r_mass[i])
            b = next(branch)
            left = build(depth + 1)
            right = build(depth + 1)
            return branch_type(left, right, features[b], float(thresholds[b]), l_mass[i], r_mass[i])

        return build(0)
