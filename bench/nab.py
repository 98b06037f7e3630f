"""NAB standard-profile score of ``models.series``, in-sample and leave-one-category-out.

Usage: ``python bench/nab.py --data ../shared/data/nab [--jobs 2] [--ensemble default|relative|shape]
[--verbose] [--write-docs docs/benchmarks.md]``

Every series is scored once by the metric detector (featurizer + ensemble), recording
the undamped ensemble score and each member's calibrated score; decision rules are then
replayed over those records (``bench/nab_loco.py``).  Printed, per category and for
all files pooled (scoring rules in ``bench/nab_scoring.py``):

* **in-sample**: the shipped rule (``models.series.default_ensemble``) and the single
  best threshold over the reported score, both measured on the data they were chosen on;
* **LOCO**: for each category, the rule and the threshold chosen on the other
  categories only, measured on it; the headline is the mean over the held-out
  categories that have windows, and all files pooled with their folds' choices;
* **AUC-ROC / AUC-PR** of each member's calibrated score and of the ensemble's score,
  rows after NAB's probation, a row inside a labelled window being positive.

``--ensemble shape`` measures ``models.series.shape_ensemble`` (the default plus the
contextual ``NearestWindow`` member) the same way, ``--ensemble relative`` the default
reporting its score relative to each series' threshold; ``--write-docs`` writes each ensemble's
tables into its own section of the ``detectors`` block.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from detector_metrics import ranking, write_section
from nab_loco import Fold, Replayer, Series, describe, leave_one_category_out, pooled
from nab_scoring import score_at, sweep

from models.decision import DecisionParams
from models.ensemble import Ensemble
from models.features import MetricFeaturizer
from models.series import (
    default_ensemble,
    parse_timestamp,
    read_series_csv,
    relative_ensemble,
    shape_ensemble,
)

ENSEMBLES: dict[str, Callable[[int], Ensemble]] = {
    "default": default_ensemble,
    "relative": relative_ensemble,
    "shape": shape_ensemble,
}
ENSEMBLE_SCORE = "ensemble"


def run_file(args: tuple[Path, str, list[tuple[str, str]], str]) -> Series:
    path, category, limits, ensemble = args
    rows = read_series_csv(path)
    stamps = [t for t, _ in rows]
    windows = [(parse_timestamp(a), parse_timestamp(b)) for a, b in limits]
    featurizer, model = MetricFeaturizer(), ENSEMBLES[ensemble](0)
    scores: list[float] = []
    members: dict[str, list[float]] = {name: [] for name in model.members}
    for stamp, value in rows:
        verdict = model.process_one(featurizer.transform_one(stamp, value))
        scores.append(verdict.undamped)
        for name, column in members.items():
            column.append(verdict.members[name])
    name = f"{category}/{path.name}"
    frame = sweep(stamps, [0.0] * len(stamps), windows, name)
    columns = {k: tuple(v) for k, v in members.items()}
    return Series(category, name, len(limits), tuple(scores), columns, tuple(frame))


def cell(value: float | None, raw: float) -> str:
    return f"raw {raw:+.2f}" if value is None else f"{value:.2f}"


def mean(values: Sequence[float | None]) -> str:
    clean = [v for v in values if v is not None]
    return f"{sum(clean) / len(clean):.2f}" if clean else "—"


def score_table(replayer: Replayer, folds: Sequence[Fold], shipped: DecisionParams, threshold: float) -> str:
    """Markdown table: in-sample (shipped rule, corpus-best threshold) beside LOCO, per category."""
    lines = [
        "| category | windows | in-sample own | in-sample best threshold | LOCO own | LOCO best threshold |",
        "|---|---|---|---|---|---|",
    ]
    inside_with, held_with = [], []
    for fold in folds:
        group = tuple(i for i, s in enumerate(replayer.series) if s.category == fold.category)
        inside, held = replayer.outcome(group, shipped, threshold), fold.outcome
        windows = sum(replayer.series[i].windows for i in group)
        lines.append(
            f"| {fold.category} | {windows} | {cell(inside.own, inside.own_raw)} | "
            f"{cell(inside.best, inside.best_raw)} | {cell(held.own, held.own_raw)} | "
            f"{cell(held.best, held.best_raw)} |"
        )
        if windows:
            inside_with.append(inside)
            held_with.append(held)
    everything = tuple(range(len(replayer.series)))
    inside, held = replayer.outcome(everything, shipped, threshold), pooled(replayer, folds)
    windows = sum(s.windows for s in replayer.series)
    lines.append(
        f"| all files pooled | {windows} | **{cell(inside.own, inside.own_raw)}** | "
        f"{cell(inside.best, inside.best_raw)} | **{cell(held.own, held.own_raw)}** | "
        f"{cell(held.best, held.best_raw)} |"
    )
    lines.append(
        f"| mean of categories with windows | | {mean([o.own for o in inside_with])} | "
        f"{mean([o.best for o in inside_with])} | **{mean([o.own for o in held_with])}** | "
        f"{mean([o.best for o in held_with])} |"
    )
    return "\n".join(lines)


def auc_table(series: Sequence[Series], replayer: Replayer, shipped: DecisionParams) -> str:
    """Markdown table: AUC-ROC / AUC-PR per member and ensemble, per category with windows and pooled."""
    categories = sorted({s.category for s in series if s.windows})
    groups = [(c, [i for i, s in enumerate(series) if s.category == c]) for c in categories]
    groups.append(("all", list(range(len(series)))))
    head = " | ".join(f"{c} ROC | {c} PR" for c, _ in groups)
    lines = [f"| score | {head} |", "|---|" + "---|" * (2 * len(groups))]
    names = [*series[0].members, ENSEMBLE_SCORE, "reported"]
    for name in names:
        cells: list[str] = []
        for _, group in groups:
            labels: list[bool] = []
            scores: list[float] = []
            for i in group:
                s = series[i]
                labels.extend(s.labels())
                if name == "reported":
                    scores.extend(p.score for p in replayer.points(i, shipped))
                else:
                    column = s.scores if name == ENSEMBLE_SCORE else s.members[name]
                    scores.extend(column[s.offset :])
            cells.extend(ranking(labels, scores).cells())
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def describe_file(replayer: Replayer, index: int, params: DecisionParams, threshold: float) -> str:
    """One diagnostic line: raw own and best-threshold scores, windows hit, false positives."""
    s = replayer.series[index]
    flags = replayer.flags(index, params)
    hits = {p.window for p, f in zip(s.frame, flags, strict=True) if f and p.window is not None}
    false = sum(1 for p, f in zip(s.frame, flags, strict=True) if f and p.window is None)
    best = score_at(replayer.points(index, params), threshold)
    own = replayer.own_raw(index, params)
    return f"  {s.name:<62} own {own:+6.2f} best {best:+6.2f} windows {len(hits)}/{s.windows} fp {false}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, required=True, help="NAB root (data/, labels/)")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--ensemble", choices=sorted(ENSEMBLES), default="default")
    parser.add_argument("--write-docs", type=Path, help="write the tables into this Markdown file")
    parser.add_argument("--verbose", action="store_true", help="also print one line per file (shipped rule)")
    args = parser.parse_args(argv)
    labels: dict[str, list[tuple[str, str]]] = json.loads(
        (args.data / "labels" / "combined_windows.json").read_text()
    )
    tasks = []
    for csv_path in sorted((args.data / "data").glob("*/*.csv")):
        key = f"{csv_path.parent.name}/{csv_path.name}"
        if key in labels:
            tasks.append((csv_path, csv_path.parent.name, labels[key], args.ensemble))
    if not tasks:
        print(f"no labelled series under {args.data}", file=sys.stderr)
        return 1
    with ProcessPoolExecutor(max_workers=max(args.jobs, 1)) as pool:
        series = list(pool.map(run_file, tasks))
    shipped = ENSEMBLES[args.ensemble](0).decision_params
    replayer = Replayer(series, shipped)
    everything = tuple(range(len(series)))
    threshold = replayer.best_threshold(everything, shipped)
    folds = leave_one_category_out(replayer)
    chosen = replayer.choose(everything)
    notes = [
        f"{len(series)} files; ensemble `{args.ensemble}`: members "
        + ", ".join(f"`{m}`" for m in series[0].members),
        f"shipped rule: {describe(shipped)}; chosen on all categories: {describe(chosen)}"
        + (" (the same)" if chosen == shipped else " (differs: update models.series)"),
        f"in-sample best threshold {threshold:.6f}; {len(replayer.candidates)} candidate rules; "
        f"reported score: {'relative to the threshold' if shipped.relative else 'the likelihood'}",
        *(f"held out {f.category}: rule {describe(f.params)}, threshold {f.threshold:.6f}" for f in folds),
    ]
    scores, aucs = score_table(replayer, folds, shipped, threshold), auc_table(series, replayer, shipped)
    if args.verbose:
        for index in everything:
            print(describe_file(replayer, index, shipped, threshold))
    print("NAB standard profile")
    print("\n".join(notes))
    print(scores)
    print("AUC over rows after probation (inside a window = positive), pooled over files")
    print(aucs)
    if args.write_docs:
        body = [
            f"### NAB: standard profile, in-sample and leave-one-category-out (ensemble `{args.ensemble}`)",
            "",
            f"Generated by `python bench/nab.py --data ../shared/data/nab --ensemble {args.ensemble} "
            f"--write-docs {args.write_docs}`. "
            "*own*: the detector's own decisions (`is_anomaly`); *best threshold*: one threshold over "
            "the reported score for all files; *LOCO*: rule and threshold chosen on the other "
            "categories, measured on this one.",
            "",
            *(f"- {n}" for n in notes),
            "",
            scores,
            "",
            "AUC-ROC / AUC-PR of each score over the rows after NAB's probation (a row inside a "
            "labelled window is positive), pooled over the files of each group. Members: calibrated "
            "likelihoods; *ensemble*: undamped; *reported*: damped during a cooldown.",
            "",
            aucs,
        ]
        section = "detectors-nab" if args.ensemble == "default" else f"detectors-nab-{args.ensemble}"
        write_section(args.write_docs, section, "\n".join(body))
    return 0


if __name__ == "__main__":
    sys.exit(main())
