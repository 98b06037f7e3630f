"""Weighted ensemble of detectors with a calibrated score, adaptive threshold and explanations."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from models.base import Detector, Features
from models.decision import DecisionParams, ThresholdDecision
from models.quantile import Calibrator
from models.state import DataState, Document, StateError, text_keys

Combine = Literal["max", "mean"]
"""How calibrated member scores combine: weighted max (any strong member) or mean."""


@runtime_checkable
class HasBaseline(Protocol):
    """A detector that can say which value a feature is compared with."""

    def baseline(self, key: str) -> float | None: ...


@dataclass(frozen=True)
class Member:
    """One detector in the ensemble: its weight, and how its raw score is calibrated.

    The raw score is calibrated against the member's own history (``Calibrator``);
    a member *fires* when its calibrated score reaches ``fire_level``.
    """

    detector: Detector
    weight: float = 1.0
    fire_level: float = 0.5


@dataclass(frozen=True)
class Explanation:
    """Why a point was flagged: which members fired, the features, the baselines."""

    fired: tuple[str, ...]
    member_scores: dict[str, float]
    features: dict[str, float]
    baseline: dict[str, float]
    threshold: float


@dataclass(frozen=True)
class Verdict:
    """The ensemble's decision for one point; ``explanation`` is set for anomalies.

    ``score`` is the ensemble likelihood in [0, 1] as the decision rule reports it
    (``models.decision``: damped during a cooldown; with ``relative_score``, relative to
    ``threshold``, 0.5 at it); ``undamped`` is the likelihood itself and ``members`` each
    member's calibrated likelihood (what ``bench/nab.py`` replays and ranks).
    """

    score: float
    threshold: float
    is_anomaly: bool
    in_probation: bool
    explanation: Explanation | None = field(default=None)
    undamped: float = 0.0
    members: Mapping[str, float] = field(default_factory=dict)


class Ensemble(DataState):
    """Weighted mean of calibrated member scores, in [0, 1], with online decisions.

    ``process_one`` scores a point, decides, then learns it (prequential order).
    The decision is :class:`models.decision.ThresholdDecision`: threshold
    ``max(min_threshold, margin * Q_q)`` over the ``quantile`` of this signal's own
    past scores, ``probation``, and a ``cooldown`` whose reported scores are
    multiplied by ``cooldown_damping``; ``relative_score`` reports the score relative to
    the threshold instead of the likelihood.
    """

    def __init__(
        self,
        members: Mapping[str, Member],
        quantile: float = 0.995,
        quantile_window: int = 2000,
        margin: float = 1.0,
        min_threshold: float = 0.5,
        probation: int = 150,
        cooldown: int = 50,
        combine: Combine = "max",
        cooldown_damping: float = 0.5,
        relative_score: bool = False,
        seed: int = 0,
    ) -> None:
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = dict(members)
        self.quantile = quantile
        self.margin = margin
        self.min_threshold = min_threshold
        self.probation = probation
        self.cooldown = cooldown
        self.combine = combine
        self.cooldown_damping = cooldown_damping
        self.seed = seed
        self._calibrators = {name: Calibrator() for name in self.members}
        self._weights = {name: m.weight for name, m in self.members.items()}
        self._top_weight = max(self._weights.values())
        # (name, detector, calibrator, weight) in member order: the per-point loops' view
        self._parts = [
            (name, m.detector, self._calibrators[name], m.weight) for name, m in self.members.items()
        ]
        self.decision_params = DecisionParams(
            quantile, quantile_window, margin, min_threshold, probation, cooldown, cooldown_damping,
            relative_score,
        )
        self._decision = ThresholdDecision(self.decision_params)

    STATE_FORMAT = "seismo.ensemble"

    def _dump_state(self) -> Document:
        return {
            "members": {name: m.detector.to_state() for name, m in self.members.items()},
            "calibrators": {name: c.to_state() for name, c in self._calibrators.items()},
            **self._decision.fields(),  # "filter", "seen", "quiet_until": the layout of version 1
        }

    def _load_state(self, state: Document) -> None:
        members, calibrators = text_keys(state["members"]), text_keys(state["calibrators"])
        if set(members) != set(self.members) or set(calibrators) != set(self.members):
            mine = sorted(self.members)
            raise StateError(f"saved members {sorted(members)} are not this ensemble's {mine}")
        for name, member in self.members.items():
            member.detector.from_state(members[name])
            self._calibrators[name].from_state(calibrators[name])
        self._decision.load_fields(state)

    def _raw(self, x: Features) -> dict[str, float]:
        return {name: m.detector.score_one(x) for name, m in self.members.items()}

    def _combine(self, raw: Mapping[str, float]) -> tuple[float, dict[str, float]]:
        calibrated = {name: self._calibrators[name].calibrate(raw[name]) for name in raw}
        return self._score(calibrated), calibrated

    def _score(self, calibrated: dict[str, float]) -> float:
        weights = self._weights
        if self.combine == "max":
            best: float | None = None
            for n, c in calibrated.items():  # max() of the weighted scores: the first largest
                v = weights[n] * c
                if best is None or v > best:
                    best = v
            assert best is not None  # an ensemble has members
            score = best / self._top_weight
        else:
            score = sum(weights[n] * c for n, c in calibrated.items()) / sum(weights.values())
        return min(max(score, 0.0), 1.0)

    def score_one(self, x: Features) -> float:
        """The calibrated ensemble score of ``x`` in [0, 1]; changes no state."""
        return self._combine(self._raw(x))[0]

    def learn_one(self, x: Features) -> None:
        self._learn(x, self._raw(x))

    def _learn(self, x: Features, raw: Mapping[str, float]) -> None:
        for name, member in self.members.items():
            self._calibrators[name].update(raw[name])
            member.detector.learn_one(x)

    def threshold(self) -> float:
        return self._decision.threshold()

    def process_one(self, x: Features) -> Verdict:
        """Score, decide and learn ``x``; returns the decision with its explanation."""
        # _raw, _combine and _learn over the members as one list (the same calls in the same order)
        parts = self._parts
        raw = [detector.score_one(x) for _, detector, _, _ in parts]
        calibrated = {part[0]: part[2].calibrate(r) for part, r in zip(parts, raw, strict=True)}
        score = self._score(calibrated)
        decision = self._decision.decide(score)
        explanation = None
        if decision.is_anomaly:
            explanation = self._explain(x, calibrated, decision.threshold)
        for (_, detector, calibrator, _), r in zip(parts, raw, strict=True):
            calibrator.update(r)
            detector.learn_one(x)
        return Verdict(
            decision.reported, decision.threshold, decision.is_anomaly, decision.in_probation,
            explanation, score, calibrated,
        )

    def _explain(self, x: Features, calibrated: Mapping[str, float], threshold: float) -> Explanation:
        fired = tuple(n for n, c in calibrated.items() if c >= self.members[n].fire_level)
        baseline: dict[str, float] = {}
        for member in self.members.values():
            if isinstance(member.detector, HasBaseline):
                for key in x:
                    value = member.detector.baseline(key)
                    if value is not None and key not in baseline:
                        baseline[key] = value
        return Explanation(fired, dict(calibrated), dict(x), baseline, threshold)
