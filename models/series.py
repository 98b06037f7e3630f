"""Score one metric series in a single streaming pass (what ``seismo detect FILE.csv`` runs).

Each point is featurized, scored and decided using only the points before it,
then learned; the output for a prefix never changes when more data is appended.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TextIO

from models.ensemble import Ensemble, Explanation, Member
from models.features import DELTA, MEAN_SHORT, SEASON_DAY, SEASON_WEEK, VALUE, MetricFeaturizer
from models.robust_zscore import RobustZScore
from models.shape import NearestWindow
from models.state import DataState, Document

OUTPUT_COLUMNS = ("timestamp", "value", "score", "is_anomaly")


@dataclass(frozen=True)
class ScoredPoint:
    """One output row; ``explanation`` is set when ``is_anomaly``."""

    timestamp: datetime
    value: float
    score: float
    is_anomaly: bool
    explanation: Explanation | None = None


def _members(seed: int) -> dict[str, Member]:
    seasonal = (SEASON_DAY, SEASON_WEEK)
    return {
        "level": Member(RobustZScore(window=400, features=(VALUE, MEAN_SHORT), seed=seed)),
        "step": Member(RobustZScore(window=400, features=(DELTA,), seed=seed)),
        "seasonal": Member(RobustZScore(window=400, features=seasonal, seed=seed)),
    }


def default_ensemble(seed: int = 0) -> Ensemble:
    """The ensemble used for every metric series (no per-series tuning).

    Three robust z-scores over a 400-point baseline: the level (value and its short
    mean), the step (delta) and the seasonal residuals (hour-of-day, hour-of-week).
    Each is calibrated as an anomaly likelihood and the strongest one wins.
    Half-Space Trees added nothing on NAB at 2-3x the cost, so ``models.hst`` is not a
    member here.  The decision rule (quantile, margin, floor, cooldown) is the candidate
    ``bench/nab.py`` chooses on all shared NAB categories, which also prints its
    leave-one-category-out score.
    """
    return Ensemble(_members(seed), quantile=0.99, margin=0.8, min_threshold=0.5, cooldown=100, seed=seed)


def relative_ensemble(seed: int = 0) -> Ensemble:
    """:func:`default_ensemble` reporting its score relative to each series' threshold.

    ``score / (score + threshold)``, 0.5 at the series' own threshold (``models.decision``):
    one cut-off over many series then decides like each series' rule (NAB best single
    threshold 69.1 in-sample vs 52.2).  Not the default: the correlator's ``anomaly_floor``
    (0.6) is set on the likelihood scale, and would hide most metric anomalies on this one.
    """
    return Ensemble(
        _members(seed), quantile=0.99, margin=0.8, min_threshold=0.5, cooldown=100,
        relative_score=True, seed=seed,
    )


def shape_ensemble(seed: int = 0) -> Ensemble:
    """:func:`default_ensemble` plus the contextual novelty of the last 16 values.

    ``models.shape.NearestWindow`` (distance to the nearest earlier stretch) raises the
    NAB scores in-sample and leave-one-category-out (``bench/nab.py --ensemble shape``),
    but costs the score step about a third more CPU per metric point, so it is not
    the default; the rule is the one ``bench/nab.py`` chooses for this ensemble.
    """
    members = _members(seed)
    members["shape"] = Member(NearestWindow(length=16, bank=1000, seed=seed))
    return Ensemble(members, quantile=0.999, margin=0.7, min_threshold=0.5, cooldown=50, seed=seed)


class MetricDetector(DataState):
    """Featurizer plus ensemble for one signal; ``process`` is score-decide-learn.

    ``ensemble`` builds the ensemble from the seed (:func:`default_ensemble`, or
    :func:`shape_ensemble` to opt into the contextual member); a state saved by one
    ensemble does not load into another (:class:`models.state.StateError`).
    """

    def __init__(self, seed: int = 0, ensemble: Callable[[int], Ensemble] | None = None) -> None:
        self.seed = seed
        self._featurizer = MetricFeaturizer()
        self._ensemble = (ensemble or default_ensemble)(seed)

    STATE_FORMAT = "seismo.metric_detector"

    def _dump_state(self) -> Document:
        return {"featurizer": self._featurizer.to_state(), "ensemble": self._ensemble.to_state()}

    def _load_state(self, state: Document) -> None:
        self._featurizer.from_state(state["featurizer"])
        self._ensemble.from_state(state["ensemble"])

    def process(self, timestamp: datetime, value: float) -> ScoredPoint:
        x = self._featurizer.transform_one(timestamp, value)
        verdict = self._ensemble.process_one(x)
        return ScoredPoint(timestamp, value, verdict.score, verdict.is_anomaly, verdict.explanation)


def score_series(
    points: Iterable[tuple[datetime, float]], seed: int = 0, ensemble: Callable[[int], Ensemble] | None = None
) -> Iterator[ScoredPoint]:
    """Score ``(timestamp, value)`` points lazily, in order, in one pass."""
    detector = MetricDetector(seed=seed, ensemble=ensemble)
    for timestamp, value in points:
        yield detector.process(timestamp, value)


def parse_timestamp(text: str) -> datetime:
    """ISO-8601 or ``YYYY-MM-DD HH:MM:SS[.ffffff]``. Raises ValueError otherwise."""
    return datetime.fromisoformat(text.strip())


def read_series_csv(path: Path) -> list[tuple[datetime, float]]:
    """Read a ``timestamp,value`` CSV. Raises ValueError on a malformed row."""
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"timestamp", "value"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: expected columns timestamp,value")
        return [(parse_timestamp(r["timestamp"]), float(r["value"])) for r in reader]


def detect_file(path: Path, seed: int = 0) -> list[ScoredPoint]:
    """Score every row of the CSV at ``path``."""
    return list(score_series(read_series_csv(path), seed=seed))


def write_scored_csv(rows: Iterable[ScoredPoint], out: TextIO) -> None:
    """Write rows as ``timestamp,value,score,is_anomaly`` (is_anomaly is 0/1)."""
    writer = csv.writer(out)
    writer.writerow(OUTPUT_COLUMNS)
    for row in rows:
        stamp = row.timestamp.isoformat(sep=" ")
        writer.writerow([stamp, repr(row.value), f"{row.score:.6f}", int(row.is_anomaly)])
