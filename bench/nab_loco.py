"""Leave-one-category-out choice of the decision rule over recorded NAB score streams.

Each series is scored once (the ensemble's undamped score does not depend on the
decision rule); every candidate :class:`models.decision.DecisionParams` of
:data:`GRID` is then replayed over the recorded scores (:func:`models.decision.replay`).
For a held-out category the rule is the candidate with the best normalised NAB score
on the *other* categories, and the "best threshold" is the single threshold over the
reported score that is best on those other categories; both are then measured on the
held-out category, which took no part in either choice.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache

import numpy as np
from nab_scoring import SweepPoint, decision_score, normalized, score_at, score_by_threshold

from models.decision import DecisionParams, past_quantiles, replay

# The candidates: the quantile of the signal's own past scores, the margin below it, the
# floor (0.5 is the likelihood the calibrator gives a tail probability of 1e-5, HTM's alert
# level) and the cooldown.  Ties go to the first candidate in this order.
QUANTILES, MARGINS, FLOORS, COOLDOWNS = (0.98, 0.99, 0.995, 0.999), (0.7, 0.8, 0.9, 1.0), (0.4, 0.5, 0.6), (
    25, 50, 100, 200,
)


def grid(base: DecisionParams) -> tuple[DecisionParams, ...]:
    """Every candidate rule; what the grid does not vary (window, damping, ...) is ``base``'s."""
    return tuple(
        replace(base, quantile=q, margin=m, min_threshold=f, cooldown=c)
        for q, m, f, c in itertools.product(QUANTILES, MARGINS, FLOORS, COOLDOWNS)
    )


@dataclass(frozen=True)
class Series:
    """One NAB file's recorded scores and its scoring frame (probation rows dropped)."""

    category: str
    name: str
    windows: int
    scores: tuple[float, ...]  # the ensemble's undamped score per row
    members: dict[str, tuple[float, ...]]  # each member's calibrated score per row
    frame: tuple[SweepPoint, ...]  # NAB weights of the rows after probation (score unused)

    @property
    def offset(self) -> int:
        return len(self.scores) - len(self.frame)

    def labels(self) -> list[bool]:
        return [p.window is not None for p in self.frame]


@dataclass(frozen=True)
class Outcome:
    """One group of series under one rule: raw NAB scores, and their normalisation."""

    own_raw: float
    best_raw: float
    own: float | None
    best: float | None


class Replayer:
    """Replays candidate rules over recorded series, caching every pass it computes."""

    def __init__(self, series: Sequence[Series], base: DecisionParams) -> None:
        self.series = tuple(series)
        self.candidates = grid(base)
        self._quantiles = cache(self._past_quantiles)
        self._runs = cache(self._run)
        self._null = cache(self._frame)

    def _past_quantiles(self, index: int, q: float, window: int) -> tuple[float, ...]:
        return tuple(past_quantiles(self.series[index].scores, q, window))

    def _run(self, index: int, params: DecisionParams) -> tuple[tuple[bool, ...], tuple[float, ...]]:
        s = self.series[index]
        flags, reported = replay(s.scores, self._quantiles(index, params.quantile, params.window), params)
        return tuple(flags[s.offset :]), tuple(reported[s.offset :])

    def _frame(self, indices: tuple[int, ...]) -> tuple[SweepPoint, ...]:
        return tuple(p for i in indices for p in self.series[i].frame)

    def own_raw(self, index: int, params: DecisionParams) -> float:
        return decision_score(self.series[index].frame, self._runs(index, params)[0])

    def points(self, index: int, params: DecisionParams) -> list[SweepPoint]:
        """The reported scores of series ``index`` under ``params`` as NAB sweep points."""
        reported = self._runs(index, params)[1]
        return [replace(p, score=v) for p, v in zip(self.series[index].frame, reported, strict=True)]

    def flags(self, index: int, params: DecisionParams) -> tuple[bool, ...]:
        return self._runs(index, params)[0]

    def norm(self, indices: tuple[int, ...], raw: float) -> float | None:
        windows = sum(self.series[i].windows for i in indices)
        return normalized(raw, self._frame(indices), windows)

    def choose(self, indices: tuple[int, ...]) -> DecisionParams:
        """The candidate with the best pooled own-decision score on ``indices`` (first on ties)."""
        totals = [sum(self.own_raw(i, p) for i in indices) for p in self.candidates]
        return self.candidates[int(np.argmax(totals))]

    def best_threshold(self, indices: tuple[int, ...], params: DecisionParams) -> float:
        corpus = [p for i in indices for p in self.points(i, params)]
        threshold, _ = max(score_by_threshold(corpus), key=lambda row: row[1])
        return threshold

    def outcome(
        self, indices: tuple[int, ...], params: DecisionParams, threshold: float
    ) -> Outcome:
        own = sum(self.own_raw(i, params) for i in indices)
        best = sum(score_at(self.points(i, params), threshold) for i in indices)
        return Outcome(own, best, self.norm(indices, own), self.norm(indices, best))


@dataclass(frozen=True)
class Fold:
    """One held-out category: the rule and threshold chosen without it, and its outcome."""

    category: str
    params: DecisionParams
    threshold: float
    outcome: Outcome


def leave_one_category_out(replayer: Replayer) -> list[Fold]:
    """One fold per category; a category with no windows is held out too (raw scores only)."""
    categories = sorted({s.category for s in replayer.series})
    folds = []
    for held in categories:
        train = tuple(i for i, s in enumerate(replayer.series) if s.category != held)
        test = tuple(i for i, s in enumerate(replayer.series) if s.category == held)
        params = replayer.choose(train)
        threshold = replayer.best_threshold(train, params)
        folds.append(Fold(held, params, threshold, replayer.outcome(test, params, threshold)))
    return folds


def pooled(replayer: Replayer, folds: Sequence[Fold]) -> Outcome:
    """Every file scored with its own fold's rule and threshold, normalised as one corpus."""
    own = best = 0.0
    for fold in folds:
        own += fold.outcome.own_raw
        best += fold.outcome.best_raw
    everything = tuple(range(len(replayer.series)))
    return Outcome(own, best, replayer.norm(everything, own), replayer.norm(everything, best))


def describe(params: DecisionParams) -> str:
    p = params
    return f"q {p.quantile} margin {p.margin} floor {p.min_threshold} cooldown {p.cooldown}"
