"""HDFS session anomaly detection: unsupervised fit on train, precision/recall/F1 on test.

Usage: ``python bench/hdfs.py [--data ../shared/data/hdfs] [--section both]``

Two sections, both scored by ``models.session.SessionInvariants`` (invariant mining
over event-count vectors), fitted on the train split one session at a time with no
labels; a test session is an anomaly when its score reaches ``--threshold`` (default
1: it breaks a learned invariant or holds an event rare in train). The detector keeps
its defaults in both sections, except that ``min_samples`` is capped at the train size
(the raw log has 88 train blocks, under the default 100, which would leave nothing
active). Labels are read only to count TP/FP/FN and to print the ceiling below.

* ``sessions (HDFS_100k_sessions.csv)``: BlockId, Label, Split, NumEvents,
  EventSequence. The file's Split column (its first 80% of rows train, the rest test);
  without one, a deterministic split by hashing the block id (80% train).
* ``raw lines (HDFS_5k.log)``: each line is split with Seismo's Loghub HDFS format and
  its content mined online, in input order, by Seismo's ``TemplateMiner`` (the miner
  the Normalizer runs per service); lines are grouped by the block ids of their raw
  content (``models.hdfs_blocks``). Blocks are split by first appearance, the earliest
  80% train -- the same ratio and order as the sessions file. Truth is
  ``HDFS_5k_block_labels.csv`` (BlockId, Label, LinesInHDFS_5k).

``ceiling`` is a diagnostic, not a detector: the best F1 any function of the
event-count vector could reach on this test split, found *with* the test labels
(sessions with identical count vectors must get the same verdict).

Beside F1, AUC-ROC and AUC-PR of each detector's score over the test sessions
(``bench/detector_metrics.py``): the invariants; an isolation forest, a robust
z-score and Half-Space Trees, each learning the last ``--window`` train sessions
(their own rolling windows); and an ensemble, the largest of the members' scores
calibrated on the train sessions (the share of train scores below it).
``--write-docs docs/benchmarks.md`` writes them into the ``detectors`` block.
"""

from __future__ import annotations

import argparse
import csv
import sys
import zlib
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from detector_metrics import Ranking, ranking, write_section

from models.base import Detector, Features
from models.hdfs_blocks import block_sessions, chronological_split
from models.hst import HSTDetector
from models.iforest import IsolationForestDetector
from models.robust_zscore import RobustZScore
from models.session import SessionInvariants
from stream_processors.normalize.templating import TemplateMiner, loghub_format

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "hdfs"
SESSIONS_CSV = "HDFS_100k_sessions.csv"
LOG = "HDFS_5k.log"
LOG_LABELS = "HDFS_5k_block_labels.csv"
TRAIN_FRACTION = 0.8
NEEDS = {"sessions": (SESSIONS_CSV,), "lines": (LOG, LOG_LABELS)}


@dataclass(frozen=True)
class Session:
    block_id: str
    counts: Features
    is_anomaly: bool
    is_train: bool


@dataclass(frozen=True)
class Metrics:
    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    fn: int


def load_sessions(path: Path) -> list[Session]:
    """Parse the sessions CSV. Raises KeyError when a required column is missing."""
    sessions = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            split = row.get("Split")
            if split is None:
                split = "test" if zlib.crc32(row["BlockId"].encode()) % 5 == 0 else "train"
            counts = Counter(row["EventSequence"].split())
            sessions.append(
                Session(
                    row["BlockId"],
                    {k: float(v) for k, v in counts.items()},
                    row["Label"].strip().lower() == "anomaly",
                    split == "train",
                )
            )
    return sessions


def load_block_labels(path: Path) -> dict[str, bool]:
    """BlockId -> is anomaly. Raises KeyError when a required column is missing."""
    with path.open(newline="") as handle:
        return {row["BlockId"]: row["Label"].strip().lower() == "anomaly" for row in csv.DictReader(handle)}


def evaluate(truth: Sequence[bool], predicted: Sequence[bool]) -> Metrics:
    tp = sum(t and p for t, p in zip(truth, predicted, strict=True))
    fp = sum(p and not t for t, p in zip(truth, predicted, strict=True))
    fn = sum(t and not p for t, p in zip(truth, predicted, strict=True))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Metrics(precision, recall, f1, tp, fp, fn)


def ceiling(test: Sequence[tuple[Features, bool]]) -> Metrics:
    """Best F1 of any verdict that depends only on the count vector (uses the labels).

    The optimum flags the groups of identical vectors whose anomaly share exceeds a
    cut, so it is a prefix of the groups sorted by that share.
    """
    groups: dict[tuple[tuple[str, float], ...], list[bool]] = defaultdict(list)
    for counts, label in test:
        groups[tuple(sorted(counts.items()))].append(label)
    ranked = sorted(groups.values(), key=lambda g: -sum(g) / len(g))
    truth = [label for group in ranked for label in group]
    best = evaluate(truth, [False] * len(truth))
    flagged = 0
    for group in ranked:
        flagged += len(group)
        m = evaluate(truth, [i < flagged for i in range(len(truth))])
        best = m if m.f1 > best.f1 else best
    return best


def score(
    train: Sequence[Features], test: Sequence[tuple[Features, bool]], threshold: float
) -> tuple[Metrics, Metrics]:
    """Fit on ``train`` (no labels), flag ``test`` at ``threshold``; metrics and ceiling."""
    model = SessionInvariants(min_samples=min(100, len(train)))
    for counts in train:
        model.learn_one(counts)
    predicted = [model.score_one(counts) >= threshold for counts, _ in test]
    return evaluate([label for _, label in test], predicted), ceiling(test)


def members(train_size: int, window: int) -> dict[str, Detector]:
    """The detectors ranked on HDFS sessions, each with its defaults but the window."""
    return {
        "invariants": SessionInvariants(min_samples=min(100, train_size)),
        "iforest": IsolationForestDetector(window=window, min_samples=min(64, window), refit_every=window),
        "robust_zscore": RobustZScore(window=window),
        "half_space_trees": HSTDetector(),
    }


def rankings(
    train: Sequence[Features], test: Sequence[tuple[Features, bool]], window: int
) -> dict[str, Ranking]:
    """AUC-ROC / AUC-PR of each member and of their train-calibrated maximum over ``test``."""
    labels = [label for _, label in test]
    out: dict[str, Ranking] = {}
    calibrated: list[list[float]] = []
    for name, model in members(len(train), window).items():
        seen = train if name == "invariants" else train[-window:]
        for counts in seen:
            model.learn_one(counts)
        reference = sorted(model.score_one(counts) for counts in train[-window:])
        scores = [model.score_one(counts) for counts, _ in test]
        out[name] = ranking(labels, scores)
        calibrated.append([bisect_left(reference, s) / len(reference) for s in scores])
    out["ensemble (max)"] = ranking(labels, [max(column) for column in zip(*calibrated, strict=True)])
    return out


def ranking_lines(ranks: dict[str, Ranking]) -> list[str]:
    return [f"  {name:<18} AUC-ROC {r.cells()[0]}  AUC-PR {r.cells()[1]}" for name, r in ranks.items()]


def report(m: Metrics, top: Metrics) -> None:
    print(f"  precision {m.precision:.4f}  recall {m.recall:.4f}  F1 {m.f1:.4f}")
    print(f"  tp {m.tp}  fp {m.fp}  fn {m.fn}")
    print(
        f"  ceiling (label oracle over count vectors): F1 {top.f1:.4f} "
        f"(tp {top.tp}  fp {top.fp}  fn {top.fn})"
    )


@dataclass(frozen=True)
class Section:
    """One section's figures, for the printout and the docs table."""

    title: str
    metrics: Metrics
    top: Metrics
    ranks: dict[str, Ranking]


def evaluate_section(
    title: str,
    train: Sequence[Features],
    test: Sequence[tuple[Features, bool]],
    threshold: float,
    window: int,
) -> Section:
    metrics, top = score(train, test, threshold)
    report(metrics, top)
    ranks = rankings(train, test, window)
    print("\n".join(ranking_lines(ranks)))
    return Section(title, metrics, top, ranks)


def run_sessions(data: Path, threshold: float, window: int) -> Section:
    sessions = load_sessions(data / SESSIONS_CSV)
    train = [s for s in sessions if s.is_train]
    test = [s for s in sessions if not s.is_train]
    print(f"sessions ({SESSIONS_CSV})")
    print(
        f"  train {len(train)} sessions (unlabelled fit; {sum(s.is_anomaly for s in train)} "
        f"labelled anomaly), test {len(test)} ({sum(s.is_anomaly for s in test)} anomaly)"
    )
    return evaluate_section(
        f"sessions ({SESSIONS_CSV})",
        [s.counts for s in train],
        [(s.counts, s.is_anomaly) for s in test],
        threshold,
        window,
    )


def run_lines(data: Path, threshold: float, window: int) -> Section:
    labels = load_block_labels(data / LOG_LABELS)
    miner = TemplateMiner()
    hdfs = loghub_format("HDFS")
    with (data / LOG).open(encoding="utf-8", errors="replace") as handle:
        grouped = block_sessions(handle, hdfs.content, lambda text: miner.add(text).template_id)
    blocks = [s for s in grouped.sessions if s.block_id in labels]
    train, test = chronological_split(blocks, TRAIN_FRACTION)
    print(f"raw lines ({LOG})")
    print(
        f"  {grouped.lines} lines ({grouped.unparsed} unparsed, {grouped.without_block} "
        f"without a block id), {len(miner.clusters)} templates mined online"
    )
    print(
        f"  {len(grouped.sessions)} blocks, {len(blocks)} labelled in {LOG_LABELS}; "
        f"{len(labels) - len(blocks)} labelled blocks not in the log"
    )
    print(
        f"  train {len(train)} blocks (first {TRAIN_FRACTION:.0%} by first line; unlabelled "
        f"fit; {sum(labels[s.block_id] for s in train)} labelled anomaly), test "
        f"{len(test)} ({sum(labels[s.block_id] for s in test)} anomaly)"
    )
    return evaluate_section(
        f"raw lines ({LOG})",
        [s.counts() for s in train],
        [(s.counts(), labels[s.block_id]) for s in test],
        threshold,
        window,
    )


def docs_table(sections: Sequence[Section], threshold: float, window: int, target: Path) -> str:
    lines = [
        "### HDFS sessions: F1 at the invariants' threshold, AUC-ROC / AUC-PR per detector",
        "",
        f"Generated by `python bench/hdfs.py --data ../shared/data/hdfs --write-docs {target}`. "
        f"Unsupervised fit on the train split, measured on the test split; F1 of the invariants "
        f"at score >= {threshold:g}; the other members learn the last {window} train sessions; "
        "*ensemble (max)*: the largest member score calibrated on the train sessions.",
        "",
        "| section | invariants F1 | label-oracle ceiling F1 | " + " | ".join(
            f"{name} ROC | {name} PR" for name in sections[0].ranks
        ) + " |",
        "|---|---|---|" + "---|" * (2 * len(sections[0].ranks)),
    ]
    for section in sections:
        cells = [c for r in section.ranks.values() for c in r.cells()]
        head = f"| {section.title} | {section.metrics.f1:.4f} | {section.top.f1:.4f} | "
        lines.append(head + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(
            "HDFS session anomaly benchmark: unsupervised invariant mining on the train "
            "split, precision/recall/F1 on the test split, for the sessions CSV and for "
            "the raw log (Seismo templates -> per-block counts)."
        )
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help=f"folder with {SESSIONS_CSV}, {LOG} and {LOG_LABELS} (default: {DEFAULT_DATA})",
    )
    parser.add_argument(
        "--section",
        choices=("both", "sessions", "lines"),
        default="both",
        help="sessions: the sessions CSV; lines: the raw log; both (default)",
    )
    parser.add_argument("--threshold", type=float, default=1.0, help="anomaly when score >= this (default 1)")
    parser.add_argument(
        "--window", type=int, default=2048, help="train sessions the rolling detectors learn (default 2048)"
    )
    parser.add_argument("--write-docs", type=Path, help="write the figures into this Markdown file")
    args = parser.parse_args(argv)
    sections = ("sessions", "lines") if args.section == "both" else (args.section,)
    missing = [args.data / f for s in sections for f in NEEDS[s] if not (args.data / f).is_file()]
    if missing:
        parser.error("missing data file(s): " + ", ".join(str(p) for p in missing))
    results = []
    for index, section in enumerate(sections):
        if index:
            print()
        run = run_sessions if section == "sessions" else run_lines
        results.append(run(args.data, args.threshold, args.window))
    if args.write_docs:
        table = docs_table(results, args.threshold, args.window, args.write_docs)
        write_section(args.write_docs, "detectors-hdfs", table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
