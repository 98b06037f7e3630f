"""When a calibrated score becomes an alert: a per-signal threshold, probation and cooldown.

The ensemble's score is an anomaly likelihood in [0, 1] (``models.quantile.Calibrator``).
Whether a point is *flagged* is decided here, against the signal's own past scores, so
one rule serves every series without per-corpus constants:

* the threshold is ``max(min_threshold, margin * Q_q)`` where ``Q_q`` is the ``quantile``
  of this signal's last ``window`` undamped scores (1.0 until ``min_samples`` were seen,
  so nothing fires while the baseline forms);
* nothing is flagged during the first ``probation`` points;
* after a flag the next ``cooldown`` points are quiet (one incident, one alert).

The *reported* score is the likelihood itself, multiplied by ``damping`` while quiet so
that a single global threshold over it also sees one alert per incident.  With
``relative`` it is instead the likelihood relative to the signal's threshold, ``score /
(score + threshold)``: 0.5 exactly at it (the score step's ``z / (z + z_threshold)``
convention), so one global threshold over many signals decides as each signal's own rule
does; it is then damped in probation too, when the threshold is not yet the signal's own.
Not the default: the correlator's ``anomaly_floor`` is set on the likelihood scale.

:class:`ThresholdDecision` is the online rule; :func:`replay` applies the same rule to
a recorded score stream given the thresholds' quantiles (what ``bench/nab.py`` sweeps
when it chooses the rule's parameters leave-one-category-out); the two agree exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from mypy_extensions import mypyc_attr

from models.quantile import QuantileFilter
from models.state import DataState, Document, integer


@mypyc_attr(native_class=False)  # frozen, and pickled inside a detector
@dataclass(frozen=True)
class DecisionParams:
    """The rule's hyperparameters (see the module docstring)."""

    quantile: float = 0.99
    window: int = 2000
    margin: float = 0.8
    min_threshold: float = 0.5
    probation: int = 150
    cooldown: int = 50
    damping: float = 0.5
    relative: bool = False


class Decision(NamedTuple):
    """One point's decision; ``reported`` is the score as the rule reports it (see the module).
    A named tuple: one is made per point of every series."""

    threshold: float
    is_anomaly: bool
    in_probation: bool
    reported: float


class ThresholdDecision(DataState):
    """The online rule for one signal; ``decide`` decides on a score, then learns it."""

    STATE_FORMAT = "seismo.threshold_decision"

    def __init__(self, params: DecisionParams | None = None, min_samples: int = 50) -> None:
        self.params = params or DecisionParams()
        self.min_samples = min_samples
        p = self.params
        self._filter = QuantileFilter(q=p.quantile, window=p.window, min_samples=min_samples, default=1.0)
        self._seen = 0
        self._quiet_until = 0

    def fields(self) -> Document:
        """The learned state as plain fields (the ensemble stores them in its own layout)."""
        return {"filter": self._filter.to_state(), "seen": self._seen, "quiet_until": self._quiet_until}

    def load_fields(self, state: Document) -> None:
        """Restore :meth:`fields`; raises :class:`models.state.StateError`."""
        self._filter.from_state(state["filter"])
        self._seen = integer(state["seen"])
        self._quiet_until = integer(state["quiet_until"])

    def _dump_state(self) -> Document:
        return self.fields()

    def _load_state(self, state: Document) -> None:
        self.load_fields(state)

    def threshold(self) -> float:
        return max(self.params.min_threshold, self.params.margin * self._filter.value())

    def decide(self, score: float) -> Decision:
        """Decide on ``score`` against the past only, then absorb it (never raises)."""
        p = self.params
        f = self._filter  # threshold() and QuantileFilter.value() inlined
        values = f._values
        threshold = max(p.min_threshold, p.margin * (
            f.default if len(values._fifo) < f.min_samples else values.quantile(f.q)
        ))
        in_probation = self._seen < p.probation
        quiet = self._seen < self._quiet_until
        is_anomaly = not in_probation and not quiet and score >= threshold
        if is_anomaly:
            self._quiet_until = self._seen + 1 + p.cooldown
        self._seen += 1
        values.push(score)
        if p.relative:
            score, quiet = relative_score(score, threshold), quiet or in_probation
        return Decision(threshold, is_anomaly, in_probation, score * p.damping if quiet else score)


def relative_score(score: float, threshold: float) -> float:
    """``score / (score + threshold)`` in [0, 1): 0.5 at the threshold, 0.0 when both are 0."""
    total = score + threshold
    return score / total if total > 0.0 else 0.0


def past_quantiles(scores: Sequence[float], q: float, window: int, min_samples: int = 50) -> list[float]:
    """``Q_q`` of the scores before each point, as :class:`ThresholdDecision` sees it."""
    qf = QuantileFilter(q=q, window=window, min_samples=min_samples, default=1.0)
    out = []
    for score in scores:
        out.append(qf.value())
        qf.update(score)
    return out


def replay(
    scores: Sequence[float], quantiles: Sequence[float], params: DecisionParams
) -> tuple[list[bool], list[float]]:
    """The flags and reported scores of a fresh :class:`ThresholdDecision` over ``scores``.

    ``quantiles`` is :func:`past_quantiles` of ``scores`` for ``params.quantile`` and
    ``params.window``; computing it once lets a sweep try every margin, floor and
    cooldown for the price of a vectorised comparison and a walk over the candidates."""
    p = params
    values = np.asarray(scores, dtype=np.float64)
    thresholds = np.maximum(p.min_threshold, p.margin * np.asarray(quantiles, dtype=np.float64))
    flags = np.zeros(len(values), dtype=bool)
    quiet = np.zeros(len(values), dtype=bool)
    quiet_until = 0
    for i in np.flatnonzero(values >= thresholds).tolist():
        if i < p.probation or i < quiet_until:
            continue
        flags[i] = True
        quiet_until = i + 1 + p.cooldown
        quiet[i + 1 : quiet_until] = True
    if p.relative:
        total = values + thresholds
        values = np.divide(values, total, out=np.zeros_like(values), where=total > 0.0)
        quiet[: p.probation] = True  # probation's scores are damped like a cooldown's
    reported = np.where(quiet, values * p.damping, values)
    return flags.tolist(), reported.tolist()
