"""Ranking metrics shared by the detector benches, and their block in ``docs/benchmarks.md``.

AUC-ROC and AUC-PR (average precision) of a score against binary labels, as
scikit-learn computes them.  ``bench/nab.py`` and ``bench/hdfs.py`` each write one
section inside the ``detectors`` block (``<!-- detectors:begin -->``), so either can
be rerun alone; nothing outside that block is touched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from docblock import write_block

BLOCK = "detectors"
SECTIONS = ("detectors-nab", "detectors-hdfs")  # created empty with the block; others are added at its end


@dataclass(frozen=True)
class Ranking:
    """AUC-ROC and AUC-PR of one score; ``None`` when the labels hold one class only."""

    roc: float | None
    pr: float | None
    positives: int
    total: int

    def cells(self) -> tuple[str, str]:
        return tuple("—" if v is None else f"{v:.3f}" for v in (self.roc, self.pr))  # type: ignore[return-value]


def ranking(labels: Sequence[bool], scores: Sequence[float]) -> Ranking:
    """AUC-ROC and average precision of ``scores`` (larger = more anomalous)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    positives = sum(labels)
    if positives == 0 or positives == len(labels):
        return Ranking(None, None, positives, len(labels))
    roc = float(roc_auc_score(list(labels), list(scores)))
    pr = float(average_precision_score(list(labels), list(scores)))
    return Ranking(roc, pr, positives, len(labels))


def write_section(path: Path, section: str, body: str) -> None:
    """Write block ``section`` inside the ``detectors`` block of ``path`` (created when missing)."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if f"<!-- {BLOCK}:begin -->" not in text:
        empty = "\n\n".join(f"<!-- {name}:begin -->\n<!-- {name}:end -->" for name in SECTIONS)
        write_block(path, BLOCK, "## Detectors: NAB and HDFS\n\n" + empty)
        text = path.read_text(encoding="utf-8")
    if f"<!-- {section}:begin -->" not in text:  # a new section goes at the end of the block
        end = f"<!-- {BLOCK}:end -->"
        text = text.replace(end, f"\n<!-- {section}:begin -->\n<!-- {section}:end -->\n{end}", 1)
        path.write_text(text, encoding="utf-8")
    write_block(path, section, body)
