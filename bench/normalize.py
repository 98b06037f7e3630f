"""Benchmark the normalize step: lines/s of ``Normalizer.normalize`` with and without redaction.

Every content line of every ``*_2k.log`` under ``--data`` (the Loghub-2k layout,
``DIR/X/X_2k.log``; the ``Content`` field is cut out with the Loghub format of X) becomes
one log Event of service X, with one attribute. The Events are built before timing; each
pass replays all of them through a fresh :class:`Normalizer` (empty miners, cold memos),
once with redaction on and once with it off, alternating, and the best of ``--repeat``
passes of each is kept. Printed: lines/s and µs/line of both, the redaction overhead in
percent (the log-intelligence issue's target: within 20%), and how many messages the
redactor changed. Then, as a check of id stability, every line is replayed against the
final templates (what a crash replay does) and the lines whose template id differs from
the one first published are counted.

Usage: python bench/normalize.py --data ../shared/data/loghub2k [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from schemas.models import Event
from stream_processors.normalizer import Normalizer, NormalizerConfig
from stream_processors.templating.loghub import loghub_format

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def load_events(data: Path) -> list[Event]:
    """One Event per content line of every ``*_2k.log``; raises SystemExit when there is none."""
    files = sorted(data.rglob("*_2k.log"))
    if not files:
        raise SystemExit(f"no *_2k.log files under {data}")
    events = []
    for path in files:
        system = path.parent.name
        fmt = loghub_format(system)
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines()):
            content = fmt.content(line)
            if content is None:
                continue
            events.append(
                Event(
                    id=f"{system}-{n}",
                    source="file",
                    kind="log",
                    timestamp=T0,
                    service=system.lower(),
                    severity="info",
                    message=content,
                    attributes={"file": path.name},
                )
            )
    return events


def one_pass(events: Sequence[Event], redact: bool) -> tuple[float, list[Event]]:
    normalizer = Normalizer(NormalizerConfig(redact=redact))
    t0 = time.perf_counter()
    out = [normalizer.normalize(e) for e in events]
    return time.perf_counter() - t0, out


def replay_mismatches(events: Sequence[Event], published: Sequence[Event]) -> int:
    """Lines whose id, replayed against the final templates, differs from the first one."""
    normalizer = Normalizer()
    for e in events:
        normalizer.normalize(e)
    again = [normalizer.normalize(e) for e in events]
    return sum(a.template_id != b.template_id for a, b in zip(again, published, strict=True))


def report(label: str, seconds: float, n: int) -> None:
    print(f"{label:<26} {n / seconds:>10,.0f} lines/s {seconds / n * 1e6:>8.2f} µs/line")


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="folder searched for *_2k.log (Loghub-2k)")
    ap.add_argument("--repeat", type=int, default=5, help="timed passes of each mode; the best is kept")
    args = ap.parse_args(argv)

    events = load_events(args.data)
    services = len({e.service for e in events})
    print(f"corpus: {args.data} ({len(events):,} lines, {services} services)")
    best = {True: float("inf"), False: float("inf")}
    outputs: dict[bool, list[Event]] = {}
    for _ in range(args.repeat):
        for redact in (False, True):
            seconds, outputs[redact] = one_pass(events, redact)
            best[redact] = min(best[redact], seconds)
    report("normalize, redaction off", best[False], len(events))
    report("normalize, redaction on", best[True], len(events))
    overhead = best[True] / best[False] - 1
    verdict = "within" if overhead <= 0.20 else "over"
    print(f"redaction overhead: {overhead:+.1%} ({verdict} the 20% target)")
    changed = sum(a.message != b.message for a, b in zip(outputs[True], events, strict=True))
    print(f"messages changed by redaction: {changed:,} of {len(events):,}")
    mismatches = replay_mismatches(events, outputs[True])
    print(f"replay against the final templates: {mismatches:,} of {len(events):,} lines change id")


if __name__ == "__main__":
    main()
