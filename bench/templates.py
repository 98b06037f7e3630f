"""Benchmark Seismo's template miner against drain3 on Loghub-2k data.

For every system folder in ``--data`` (``X/X_2k.log`` plus
``X/X_2k.log_structured_corrected.csv``) the raw log is split with the Loghub format,
and the ``Content`` of each line is parsed by Seismo's miner and by drain3 (default
config with the masking instructions of drain3's examples). Printed per system and on
average: Grouping Accuracy (GA), Parsing Accuracy (PA) and lines/s of both, and the
throughput ratio. Nothing is hard-coded: every number is measured in this run.

GA: a line is correct when the set of lines in its predicted group equals the set of
lines in its ground-truth group (lines sharing one ground-truth EventTemplate, as the
Loghub-2.0 evaluator groups them). PA: the fraction of lines whose predicted template
(the final template of its group) equals the ground truth after every ``<...>``
placeholder is read as ``<*>`` and whitespace is normalised.
Throughput counts parsing only (masking and mining; reading and splitting the file is
excluded) in process CPU time, so other work on a shared machine does not land on one
parser; each parser's best time over ``--repeat`` fresh runs is kept, the two parsers'
runs interleaved.

Usage: python bench/templates.py --data ../shared/data/loghub2k [--systems HDFS Spark]
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stream_processors.normalize.templating.exceptions import UnknownLogFormat
from stream_processors.normalize.templating.loghub import loghub_format
from stream_processors.normalize.templating.masking import Masker
from stream_processors.normalize.templating.miner import MinerConfig, TemplateMiner
from stream_processors.normalize.templating.offline import OFFLINE_CONFIG

_PLACEHOLDER = re.compile(r"<\*>|<[A-Z][A-Z0-9_]*>")

# The masking instructions of drain3's examples (examples/drain3.ini).
DRAIN3_MASKING = (
    (r"((?<=[^A-Za-z0-9])|^)(([0-9a-f]{2,}:){3,}([0-9a-f]{2,}))((?=[^A-Za-z0-9])|$)", "ID"),
    (r"((?<=[^A-Za-z0-9])|^)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})((?=[^A-Za-z0-9])|$)", "IP"),
    (r"((?<=[^A-Za-z0-9])|^)([0-9a-f]{6,} ?){3,}((?=[^A-Za-z0-9])|$)", "SEQ"),
    (r"((?<=[^A-Za-z0-9])|^)([0-9A-F]{4} ?){4,}((?=[^A-Za-z0-9])|$)", "SEQ"),
    (r"((?<=[^A-Za-z0-9])|^)(0x[a-f0-9A-F]+)((?=[^A-Za-z0-9])|$)", "HEX"),
    (r"((?<=[^A-Za-z0-9])|^)([\-\+]?\d+)((?=[^A-Za-z0-9])|$)", "NUM"),
)


@dataclass(frozen=True)
class Parsed:
    """One parser's output on one system: group key and final template per line."""

    groups: list[Hashable]
    templates: list[str]
    seconds: float


@dataclass(frozen=True)
class Score:
    ga: float
    pa: float
    lines_per_s: float


def load_system(folder: Path) -> tuple[list[str], list[str]]:
    """Contents extracted with the Loghub format, and ground-truth templates, per line.

    The raw ``X_2k.log`` is split with the Loghub format of ``X`` (as ``seismo
    templates --format loghub:X`` would). Where that cannot line up with the labels
    (no raw log, a system without a known format, or a different number of lines),
    the labelled file's own ``Content`` column is used and a warning says so, so one
    odd folder does not stop the run. Raises ``FileNotFoundError`` without labels.
    """
    name = folder.name
    truth_file = folder / f"{name}_2k.log_structured_corrected.csv"
    if not truth_file.exists():
        truth_file = folder / f"{name}_2k.log_structured.csv"
    if not truth_file.exists():
        raise FileNotFoundError(f"{name}: no {name}_2k.log_structured_corrected.csv in {folder}")
    with truth_file.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    truth = [row["EventTemplate"] for row in rows]
    raw = folder / f"{name}_2k.log"
    why = ""
    try:
        fmt = loghub_format(name)
    except UnknownLogFormat:
        why = "no Loghub format of that name"
    else:
        if raw.exists():
            with raw.open(encoding="utf-8", errors="replace") as handle:
                contents = [c for c in (fmt.content(line) for line in handle) if c is not None]
            if len(contents) == len(truth):
                return contents, truth
            why = f"{len(contents)} lines fit the format but {len(truth)} are labelled"
        else:
            why = f"no {raw.name}"
    print(f"warning: {name}: {why}; parsing the Content column of {truth_file.name}", file=sys.stderr)
    return [row["Content"] for row in rows], truth


def grouping_accuracy(predicted: Sequence[Hashable], truth: Sequence[str]) -> float:
    """Fraction of lines whose predicted group equals their ground-truth group."""
    pred_groups: dict[Hashable, set[int]] = defaultdict(set)
    true_groups: dict[str, set[int]] = defaultdict(set)
    for i, (p, t) in enumerate(zip(predicted, truth, strict=True)):
        pred_groups[p].add(i)
        true_groups[t].add(i)
    correct = sum(len(lines) for lines in pred_groups.values() if true_groups[truth[min(lines)]] == lines)
    return correct / len(truth) if truth else 0.0


def normalise_template(template: str) -> str:
    """Every ``<...>`` placeholder becomes ``<*>``; whitespace runs become one space."""
    return " ".join(_PLACEHOLDER.sub("<*>", template).split())


def parsing_accuracy(templates: Sequence[str], truth: Sequence[str]) -> float:
    """Fraction of lines whose template equals the ground truth after normalisation."""
    same = sum(normalise_template(p) == normalise_template(t) for p, t in zip(templates, truth, strict=True))
    return same / len(truth) if truth else 0.0


def run_seismo(contents: list[str], config: MinerConfig | None = None) -> Parsed:
    """Seismo's miner over ``contents`` (``seismo templates``' settings unless ``config``
    is given); each line reported with its template's final id and text
    (a template merged into an older one after the line was added answers with the older one)."""
    miner = TemplateMiner(config or OFFLINE_CONFIG, masker=Masker())
    start = time.process_time()
    ids = [miner.add(line).template_id for line in contents]
    seconds = time.process_time() - start
    final = {cid: miner.clusters[cid] for cid in set(ids)}
    return Parsed([final[cid].id for cid in ids], [final[cid].text for cid in ids], seconds)


def run_drain3(contents: list[str]) -> Parsed:
    from drain3 import TemplateMiner as Drain3Miner
    from drain3.masking import MaskingInstruction
    from drain3.template_miner_config import TemplateMinerConfig

    config = TemplateMinerConfig()
    config.masking_instructions = [MaskingInstruction(p, name) for p, name in DRAIN3_MASKING]
    miner = Drain3Miner(config=config)
    start = time.process_time()
    ids = [miner.add_log_message(line)["cluster_id"] for line in contents]
    seconds = time.process_time() - start
    final = {c.cluster_id: c.get_template() for c in miner.drain.clusters}
    return Parsed(list(ids), [final[cid] for cid in ids], seconds)


def race(contents: list[str], repeat: int) -> tuple[Parsed, Parsed]:
    """Seismo's and drain3's :func:`best_of`, their runs interleaved so both see the same
    machine load (a shared machine's load drifts between two back-to-back series)."""
    ours: list[Parsed] = []
    theirs: list[Parsed] = []
    for _ in range(repeat):
        ours.append(run_seismo(contents))
        theirs.append(run_drain3(contents))
    return (
        Parsed(ours[0].groups, ours[0].templates, min(r.seconds for r in ours)),
        Parsed(theirs[0].groups, theirs[0].templates, min(r.seconds for r in theirs)),
    )


def best_of(run: Callable[[list[str]], Parsed], contents: list[str], repeat: int) -> Parsed:
    """The first run's output with the fastest run's time (every run starts fresh)."""
    runs = [run(contents) for _ in range(repeat)]
    return Parsed(runs[0].groups, runs[0].templates, min(r.seconds for r in runs))


def score(parsed: Parsed, truth: list[str]) -> Score:
    return Score(
        ga=grouping_accuracy(parsed.groups, truth),
        pa=parsing_accuracy(parsed.templates, truth),
        lines_per_s=len(truth) / parsed.seconds if parsed.seconds > 0 else float("inf"),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Grouping/parsing accuracy and throughput of Seismo's template miner "
        "versus drain3 on Loghub-2k systems (one folder per system).",
    )
    parser.add_argument("--data", required=True, type=Path, help="folder holding one sub-folder per system")
    parser.add_argument("--systems", nargs="*", default=None, help="system folder names (default: all found)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per parser; the best is kept")
    args = parser.parse_args(argv)
    folders = sorted(p for p in args.data.iterdir() if p.is_dir())
    if args.systems:
        wanted = {s.lower() for s in args.systems}
        folders = [p for p in folders if p.name.lower() in wanted]
    if not folders:
        parser.error(f"no system folders found in {args.data}")
    header = (
        f"{'system':<12}{'GA seismo':>10}{'GA drain3':>10}{'PA seismo':>10}{'PA drain3':>10}"
        f"{'lines/s seismo':>16}{'lines/s drain3':>16}{'ratio':>7}"
    )
    print(header)
    print("-" * len(header))
    rows: list[tuple[Score, Score]] = []
    lines = 0
    seconds = [0.0, 0.0]
    for folder in folders:
        try:
            contents, truth = load_system(folder)
        except FileNotFoundError as exc:
            print(f"skipped: {exc}", file=sys.stderr)
            continue
        ours_run, theirs_run = race(contents, args.repeat)
        ours, theirs = score(ours_run, truth), score(theirs_run, truth)
        lines += len(truth)
        seconds[0] += ours_run.seconds
        seconds[1] += theirs_run.seconds
        rows.append((ours, theirs))
        print(_line(folder.name, ours, theirs))
    if not rows:
        parser.error(f"no labelled system found in {args.data}")
    if len(rows) > 1:
        print("-" * len(header))
        print(_line("average", _mean([r[0] for r in rows]), _mean([r[1] for r in rows])))
        print(
            f"overall throughput (all lines / all parse time): seismo "
            f"{lines / seconds[0]:,.0f} lines/s, drain3 {lines / seconds[1]:,.0f} lines/s, "
            f"ratio {seconds[1] / seconds[0]:.2f}x (CPU time; 1-min load average {os.getloadavg()[0]:.1f})"
        )
    return 0


def _mean(scores: list[Score]) -> Score:
    n = len(scores)
    return Score(
        ga=sum(s.ga for s in scores) / n,
        pa=sum(s.pa for s in scores) / n,
        lines_per_s=sum(s.lines_per_s for s in scores) / n,
    )


def _line(name: str, ours: Score, theirs: Score) -> str:
    ratio = ours.lines_per_s / theirs.lines_per_s
    return (
        f"{name:<12}{ours.ga:>10.4f}{theirs.ga:>10.4f}{ours.pa:>10.4f}{theirs.pa:>10.4f}"
        f"{ours.lines_per_s:>16,.0f}{theirs.lines_per_s:>16,.0f}{ratio:>6.2f}x"
    )


if __name__ == "__main__":
    raise SystemExit(main())
