"""Leave-one-system-out evaluation of Seismo's template miner on Loghub-2k systems.

Every setting of the miner (similarity, how many distinct words make a position a
value, how alike two skeletons must be to join templates across token counts) is
chosen on all systems but one and measured on the one left out; the mean over the
held-out runs is the headline. Beside it, per system: the in-sample figures of the
shipped settings (``seismo templates``' ``OFFLINE_CONFIG`` and the streaming default)
and of drain3 (default config, drain3's example masking), and the throughput ratio.

Selection on the other systems: the highest mean GA, then the highest mean PA, then the
first in grid order (the grid lists the shipped values first, so a tie keeps them).
GA and PA are as in ``bench/templates.py``.

Usage: python bench/templates_loso.py --data ../shared/data/loghub2k [--write-docs docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from docblock import write_block
from templates import (
    grouping_accuracy,
    load_system,
    parsing_accuracy,
    race,
    run_seismo,
)

from stream_processors.normalize.templating.miner import MinerConfig
from stream_processors.normalize.templating.offline import OFFLINE_CONFIG

# Shipped values first in each list: grid order breaks ties.
SIMILARITY = (0.6, 0.5, 0.4, 0.7)
VALUE_AFTER = (3, 2, 4, 5)
JOIN = (0.8, 1.0, 0.6, None)


@dataclass(frozen=True)
class Acc:
    ga: float
    pa: float


@dataclass(frozen=True)
class Row:
    """One held-out system: LOSO, shipped offline, streaming default and drain3 accuracy."""

    system: str
    loso: Acc
    shipped: Acc
    streaming: Acc
    drain3: Acc
    chosen: MinerConfig

    def accs(self) -> tuple[Acc, Acc, Acc, Acc]:
        return (self.loso, self.shipped, self.streaming, self.drain3)


def grid() -> list[MinerConfig]:
    return [
        MinerConfig(similarity=s, value_after=k, join_similarity=j, merge_live=True)
        for s, k, j in itertools.product(SIMILARITY, VALUE_AFTER, JOIN)
    ]


def measure(contents: list[str], truth: list[str], config: MinerConfig) -> Acc:
    parsed = run_seismo(contents, config)
    return Acc(grouping_accuracy(parsed.groups, truth), parsing_accuracy(parsed.templates, truth))


def select(scores: dict[MinerConfig, dict[str, Acc]], systems: Sequence[str]) -> MinerConfig:
    """The config with the best mean GA (then PA, then grid order) over ``systems``."""

    def key(item: tuple[int, MinerConfig]) -> tuple[float, float, int]:
        index, config = item
        ga = sum(scores[config][s].ga for s in systems) / len(systems)
        pa = sum(scores[config][s].pa for s in systems) / len(systems)
        return (round(ga, 9), round(pa, 9), -index)

    return max(enumerate(scores), key=key)[1]


def describe(config: MinerConfig) -> str:
    return f"sim {config.similarity}, k {config.value_after}, join {config.join_similarity}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="folder holding one sub-folder per system")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per parser for throughput")
    parser.add_argument("--write-docs", type=Path, default=None, help="Markdown file to write the table into")
    args = parser.parse_args(argv)
    folders = sorted(p for p in args.data.iterdir() if p.is_dir())
    data: dict[str, tuple[list[str], list[str]]] = {}
    for folder in folders:
        try:
            data[folder.name] = load_system(folder)
        except FileNotFoundError as exc:
            print(f"skipped: {exc}", file=sys.stderr)
    systems = list(data)
    if len(systems) < 2:
        parser.error("leave-one-out needs at least two labelled systems")
    # Timed first, before the grid's thousands of miners have grown the heap.
    timed = {s: race(data[s][0], args.repeat) for s in systems}
    configs = grid()
    scores = {c: {s: measure(*data[s], c) for s in systems} for c in configs}
    streaming = MinerConfig()
    for extra in (OFFLINE_CONFIG, streaming):
        scores.setdefault(extra, {s: measure(*data[s], extra) for s in systems})
    rows = []
    seismo_s = drain_s = 0.0
    lines = 0
    for held in systems:
        chosen = select({c: scores[c] for c in configs}, [s for s in systems if s != held])
        truth = data[held][1]
        ours, theirs = timed[held]
        seismo_s, drain_s, lines = seismo_s + ours.seconds, drain_s + theirs.seconds, lines + len(truth)
        drain = Acc(grouping_accuracy(theirs.groups, truth), parsing_accuracy(theirs.templates, truth))
        shipped, stream = scores[OFFLINE_CONFIG][held], scores[streaming][held]
        rows.append(Row(held, scores[chosen][held], shipped, stream, drain, chosen))
    table = render(rows)
    print(table)
    ratio = drain_s / seismo_s
    tail = (
        f"\nthroughput (all lines / all parse time, OFFLINE_CONFIG): seismo {lines / seismo_s:,.0f} lines/s, "
        f"drain3 {lines / drain_s:,.0f} lines/s, ratio {ratio:.2f}x "
        f"(CPU time; 1-min load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
    )
    print(tail)
    everywhere = select({c: scores[c] for c in configs}, systems)
    print(
        f"selected on all {len(systems)} systems: {describe(everywhere)} "
        f"(OFFLINE_CONFIG: {describe(OFFLINE_CONFIG)})"
    )
    if args.write_docs:
        command = (
            "python bench/templates_loso.py --data ../shared/data/loghub2k --write-docs docs/benchmarks.md"
        )
        body = (
            "## Templates: leave-one-system-out (Loghub-2k, shared systems)\n\n"
            f"Generated by `{command}`. *LOSO*: settings chosen on the other systems, measured on this one; "
            "*shipped*: `seismo templates` (`OFFLINE_CONFIG`, in-sample); *streaming*: the normalize step's "
            "default `MinerConfig` (in-sample); drain3: default config, example masking.\n\n"
            f"{table}\n\n{tail.strip()}\n\nSelected on all systems: {describe(everywhere)}.\n"
        )
        write_block(args.write_docs, "templates", body)
    return 0


def render(rows: list[Row]) -> str:
    head = (
        "| system | GA LOSO | PA LOSO | GA shipped | PA shipped | GA streaming | PA streaming "
        "| GA drain3 | PA drain3 | chosen on the others |"
    )
    out = [head, "|" + "---|" * 10]
    for row in rows:
        cells = " | ".join(f"{a.ga:.4f} | {a.pa:.4f}" for a in row.accs())
        out.append(f"| {row.system} | {cells} | {describe(row.chosen)} |")
    n = len(rows)
    columns = list(zip(*(row.accs() for row in rows), strict=True))
    means = [Acc(sum(a.ga for a in col) / n, sum(a.pa for a in col) / n) for col in columns]
    cells = " | ".join(f"**{a.ga:.4f}** | {a.pa:.4f}" for a in means)
    worst = min(row.loso.ga for row in rows)
    out.append(f"| mean | {cells} | lowest held-out GA {worst:.4f} |")
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
