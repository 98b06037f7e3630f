"""HDFS session anomaly detection: unsupervised fit on train, precision/recall/F1 on test.

Usage: ``python bench/hdfs.py --data ../shared/data/hdfs``

Reads ``HDFS_100k_sessions.csv`` (BlockId, Label, Split, NumEvents,
EventSequence).  The model (``models.session.SessionInvariants``) learns the
train split's event-count vectors one by one with no labels; a test session is
an anomaly when its score reaches ``--threshold``.  Labels are used only to
count TP/FP/FN.  When the file has no Split column, a deterministic split is
made by hashing the block id (80% train).
"""

from __future__ import annotations

import argparse
import csv
import sys
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from models.base import Features
from models.session import SessionInvariants


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


def evaluate(truth: list[bool], predicted: list[bool]) -> Metrics:
    tp = sum(t and p for t, p in zip(truth, predicted, strict=True))
    fp = sum(p and not t for t, p in zip(truth, predicted, strict=True))
    fn = sum(t and not p for t, p in zip(truth, predicted, strict=True))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Metrics(precision, recall, f1, tp, fp, fn)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="HDFS session anomaly benchmark")
    parser.add_argument("--data", type=Path, required=True, help="folder with the sessions CSV")
    parser.add_argument("--threshold", type=float, default=1.0)
    args = parser.parse_args(argv)
    sessions = load_sessions(args.data / "HDFS_100k_sessions.csv")
    train = [s for s in sessions if s.is_train]
    test = [s for s in sessions if not s.is_train]
    model = SessionInvariants()
    for session in train:
        model.learn_one(session.counts)  # no labels
    predicted = [model.score_one(s.counts) >= args.threshold for s in test]
    m = evaluate([s.is_anomaly for s in test], predicted)
    print(f"HDFS sessions: train {len(train)} (unlabelled fit), test {len(test)}")
    print(f"precision {m.precision:.4f}  recall {m.recall:.4f}  F1 {m.f1:.4f}")
    print(f"tp {m.tp}  fp {m.fp}  fn {m.fn}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
