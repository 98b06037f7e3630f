"""NAB standard-profile score of ``models.series`` (Numenta Anomaly Benchmark rules).

Usage: ``python bench/nab.py --data ../shared/data/nab [--jobs 2]``

Scoring follows numenta/NAB ``nab/sweeper.py``: windows from
``labels/combined_windows.json``; the probationary period is
``min(floor(0.15 * n), 0.15 * 5000)`` rows and is ignored; inside a window a
detection is worth ``scaledSigmoid(-(right - i + 1) / width) / scaledSigmoid(-1)``
and only the best (earliest) one per window counts; a missed window costs
``fnWeight``; a detection outside every window costs
``fpWeight * scaledSigmoid(distance past the previous window / (width - 1))``
(``-fpWeight`` before the first window).  Scores are summed over files and
normalised as in ``nab/runner.py``: ``100 * (raw - null) / (perfect - null)``
with ``perfect = windows * tpWeight`` and ``null`` the null detector's best score.
The threshold is chosen once for the whole corpus (sweep over every score value).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from models.series import parse_timestamp, read_series_csv, score_series

TP_WEIGHT, FP_WEIGHT, FN_WEIGHT = 1.0, 0.11, 1.0  # NAB "standard" profile
PROBATION_PERCENT = 0.15


@dataclass(frozen=True)
class SweepPoint:
    """One scorable row: its anomaly score, weighted sweep score and window name."""

    score: float
    sweep: float
    window: str | None


@dataclass(frozen=True)
class FileResult:
    category: str
    name: str
    points: tuple[SweepPoint, ...]
    decisions: tuple[SweepPoint, ...]
    windows: int


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


def run_file(args: tuple[Path, str, list[tuple[str, str]]]) -> FileResult:
    path, category, limits = args
    rows = read_series_csv(path)
    stamps = [t for t, _ in rows]
    windows = [(parse_timestamp(a), parse_timestamp(b)) for a, b in limits]
    scored = list(score_series(rows))
    name = f"{category}/{path.name}"
    points = sweep(stamps, [p.score for p in scored], windows, name)
    decisions = sweep(stamps, [1.0 if p.is_anomaly else 0.0 for p in scored], windows, name)
    return FileResult(category, name, tuple(points), tuple(decisions), len(limits))


def null_score(results: list[FileResult]) -> float:
    """The null detector (constant score) at its best threshold."""
    flat = [SweepPoint(0.5, p.sweep, p.window) for r in results for p in r.points]
    return max(s for _, s in score_by_threshold(flat)) if flat else 0.0


def normalized(raw: float, results: list[FileResult]) -> float | None:
    perfect = sum(r.windows for r in results) * TP_WEIGHT
    base = null_score(results)
    return None if perfect == base else 100.0 * (raw - base) / (perfect - base)


def describe(result: FileResult, threshold: float) -> str:
    """One diagnostic line: raw scores, and detections inside/outside windows."""
    fired = [p for p in result.decisions if p.score >= 1.0]
    hits = sorted({p.window for p in fired if p.window is not None})
    false = sum(1 for p in fired if p.window is None)
    own = score_at(list(result.decisions), 1.0)
    best = score_at(list(result.points), threshold)
    return (
        f"  {result.name:<62} own {own:+6.2f} best {best:+6.2f} "
        f"windows {len(hits)}/{result.windows} fp {false}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, required=True, help="NAB root (data/, labels/)")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--verbose", action="store_true", help="also print one line per file")
    args = parser.parse_args(argv)
    labels: dict[str, list[tuple[str, str]]] = json.loads(
        (args.data / "labels" / "combined_windows.json").read_text()
    )
    tasks = []
    for csv_path in sorted((args.data / "data").glob("*/*.csv")):
        key = f"{csv_path.parent.name}/{csv_path.name}"
        if key in labels:
            tasks.append((csv_path, csv_path.parent.name, labels[key]))
    if not tasks:
        print(f"no labelled series under {args.data}", file=sys.stderr)
        return 1
    with ProcessPoolExecutor(max_workers=max(args.jobs, 1)) as pool:
        results = list(pool.map(run_file, tasks))
    corpus = [p for r in results for p in r.points]
    best_threshold, _ = max(score_by_threshold(corpus), key=lambda row: row[1])
    by_category: dict[str, list[FileResult]] = defaultdict(list)
    for r in results:
        by_category[r.category].append(r)
    if args.verbose:
        for r in results:
            print(describe(r, best_threshold))
    groups = [*sorted(by_category.items()), ("ALL", results)]
    print(f"NAB standard profile, {len(results)} files, best threshold {best_threshold:.6f}")
    print(f"{'category':<28}{'windows':>8}{'own is_anomaly':>16}{'best threshold':>16}")
    for category, group in groups:
        own = sum(score_at(list(r.decisions), 1.0) for r in group)
        best = sum(score_at(list(r.points), best_threshold) for r in group)
        cells = []
        for raw in (own, best):
            norm = normalized(raw, group)
            cells.append(f"raw {raw:+.2f}" if norm is None else f"{norm:.2f}")
        windows = sum(r.windows for r in group)
        print(f"{category:<28}{windows:>8}{cells[0]:>16}{cells[1]:>16}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
