"""The NAB standard-profile scoring rules (numenta/NAB ``nab/sweeper.py``, ``nab/runner.py``).

The probationary period is ``min(floor(0.15 * n), 0.15 * 5000)`` rows and is ignored;
inside a window a detection is worth ``scaledSigmoid(-(right - i + 1) / width) /
scaledSigmoid(-1)`` and only the best (earliest) one per window counts; a missed window
costs ``fnWeight``; a detection outside every window costs ``fpWeight * scaledSigmoid(distance
past the previous window / (width - 1))`` (``-fpWeight`` before the first window).  Scores
are summed over files and normalised as in ``nab/runner.py``: ``100 * (raw - null) /
(perfect - null)`` with ``perfect = windows * tpWeight`` and ``null`` the null detector's
best score.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

TP_WEIGHT, FP_WEIGHT, FN_WEIGHT = 1.0, 0.11, 1.0  # NAB "standard" profile
PROBATION_PERCENT = 0.15


@dataclass(frozen=True)
class SweepPoint:
    """One scorable row: its anomaly score, weighted sweep score and window name."""

    score: float
    sweep: float
    window: str | None


def scaled_sigmoid(position: float) -> float:
    if position >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


def sweep(
    stamps: list[datetime], scores: list[float], windows: list[tuple[datetime, datetime]], name: str
) -> list[SweepPoint]:
    """``Sweeper.calcSweepScore`` minus the probationary rows."""
    n = len(stamps)
    probation = min(math.floor(PROBATION_PERCENT * n), PROBATION_PERCENT * 5000)
    spans = []  # (left index, right index) of each window, NAB-style inclusive limits
    for start, end in windows:
        inside = [i for i, t in enumerate(stamps) if start <= t <= end]
        if inside:
            spans.append((inside[0], inside[-1]))
    max_tp = scaled_sigmoid(-1.0)
    out: list[SweepPoint] = []
    span_idx, prev_right, prev_width = 0, -1, 0.0
    for i, score in enumerate(scores):
        current = spans[span_idx] if span_idx < len(spans) else None
        window: str | None = None
        if current is not None and current[0] <= i <= current[1]:
            width = float(current[1] - current[0] + 1)
            window = f"{name}|{current[0]}"
            weighted = scaled_sigmoid(-(current[1] - i + 1) / width) * TP_WEIGHT / max_tp
            if i == current[1]:
                span_idx, prev_right, prev_width = span_idx + 1, current[1], width
        else:
            past = 3.0 if prev_right < 0 else abs(prev_right - i) / (prev_width - 1.0)
            weighted = scaled_sigmoid(past) * FP_WEIGHT
        if i >= probation:
            out.append(SweepPoint(score, weighted, window))
    return out


def score_by_threshold(points: list[SweepPoint]) -> list[tuple[float, float]]:
    """``Sweeper.calcScoreByThreshold``: (threshold, raw score) for every threshold."""
    ranked = sorted(points, key=lambda p: p.score, reverse=True)
    parts: dict[str, float] = {"fp": 0.0}
    for p in ranked:
        if p.window is not None:
            parts[p.window] = -FN_WEIGHT
    out: list[tuple[float, float]] = []
    threshold = 1.1
    total = sum(parts.values())
    for p in ranked:
        if p.score != threshold:
            out.append((threshold, total))
            threshold = p.score
        if p.window is None:
            parts["fp"] += p.sweep
            total += p.sweep
        elif p.sweep > parts[p.window]:
            total += p.sweep - parts[p.window]
            parts[p.window] = p.sweep
    out.append((threshold, total))
    return out


def score_at(points: list[SweepPoint], threshold: float) -> float:
    """``Sweeper.scoreDataSet``: the raw score when ``score >= threshold`` is a detection."""
    rows = score_by_threshold(points)
    previous = rows[0]
    for row in rows:
        if row[0] == threshold:
            return row[1]
        if row[0] < threshold:
            return previous[1]
        previous = row
    return rows[-1][1]


def decision_score(points: Sequence[SweepPoint], flags: Sequence[bool]) -> float:
    """``score_at(points with score 1.0 where flagged else 0.0, 1.0)`` without the sort."""
    best: dict[str, float] = {}
    total = 0.0
    for p, flag in zip(points, flags, strict=True):
        if p.window is None:
            total += p.sweep if flag else 0.0
        else:
            current = best.setdefault(p.window, -FN_WEIGHT)
            if flag and p.sweep > current:
                best[p.window] = p.sweep
    return total + sum(best.values())


def null_score(points: Sequence[SweepPoint]) -> float:
    """The null detector (constant score) at its best threshold."""
    flat = [SweepPoint(0.5, p.sweep, p.window) for p in points]
    return max(s for _, s in score_by_threshold(flat)) if flat else 0.0


def normalized(raw: float, points: Sequence[SweepPoint], windows: int) -> float | None:
    """NAB's normalised score of ``raw`` over files holding ``points`` and ``windows``."""
    perfect = windows * TP_WEIGHT
    base = null_score(points)
    return None if perfect == base else 100.0 * (raw - base) / (perfect - base)
