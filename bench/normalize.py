"""Benchmark the normalize step: µs/line of ``Normalizer.normalize`` with and without redaction.

Every content line of every ``*_2k.log`` under ``--data`` (the Loghub-2k layout,
``DIR/X/X_2k.log``; the ``Content`` field is cut out with the Loghub format of X) becomes
one log Event of service X, with one attribute. The Events are built before timing.

Method (printed with the results). One *round* times both modes, redaction off and on,
in an order that alternates between rounds (off-on, on-off, ...), so drift in machine
load and order effects fall on both modes alike. Each mode's run in a round builds a
fresh :class:`Normalizer` and times two passes over all the Events:

* **cold** -- the first pass: empty miners and memos (the masker's token memo, and with
  redaction on the screen's memos of line shapes, runs and tokens), as a worker just
  started -- every template, token and line shape is new the first time it comes;
* **warm** -- a second pass over the same Events with the same Normalizer: warm token
  memos and template caches, as in a long-running worker (steady state).

Time is the CPU time of the benchmarking thread (``time.thread_time``), so time the OS
gives to other processes on a shared machine is not counted (their effect on caches and
clock frequency still is). The collector stays enabled while timing, as in production,
but a full collection traverses every live object, so what the benchmark itself holds
would be charged to whichever mode happens to trigger one (a single full collection over
16,000 held Events costs about 2 µs/line): the input Events are frozen out of the
collector (``gc.freeze``) and each pass drops its output Events as they come, as a worker
does; ``gc.collect()`` runs before every timed pass. Nothing is pinned: CPU frequency,
affinity and neighbours are left as they are, which is why a median over many rounds is
reported and not a single best. Printed per
mode and phase: the median µs/line, min-max and the interquartile range over the
rounds; the overhead of redaction as the ratio of the two medians, and the median of the
per-round ratios (paired, so less sensitive to load that changes between rounds). The
target of the log-intelligence issue: overhead within 20%.

Then, as checks, how many messages the redactor changed, and -- for id stability --
every line is replayed against the final templates (what a crash replay does) and the
lines whose template id differs from the one first published are counted.

Usage: python bench/normalize.py --data ../shared/data/loghub2k [--repeat 15]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from schemas.models import Event, EventKind, Severity, Source
from stream_processors.normalize.normalizer import Normalizer, NormalizerConfig
from stream_processors.normalize.templating.loghub import loghub_format

T0 = datetime(2024, 1, 1, tzinfo=UTC)
PHASES = ("cold", "warm")
CLOCK = time.thread_time  # CPU time of this thread: time the OS gives to neighbours is not counted
TARGET = 0.20


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
                    source=Source.FILE,
                    kind=EventKind.LOG,
                    timestamp=T0,
                    service=system.lower(),
                    severity=Severity.INFO,
                    message=content,
                    attributes={"file": path.name},
                )
            )
    return events


def timed_pass(normalizer: Normalizer, events: Sequence[Event]) -> float:
    """Seconds of CPU time for one pass of ``events`` through ``normalizer``.

    The output Events are dropped as they come, as a worker sends and forgets them:
    16,000 of them held to the end would be traversed by every full garbage collection.
    """
    gc.collect()
    normalize = normalizer.normalize
    t0 = CLOCK()
    for e in events:
        normalize(e)
    return CLOCK() - t0


def one_run(events: Sequence[Event], redact: bool) -> tuple[float, float]:
    """Cold and warm seconds of a fresh Normalizer."""
    normalizer = Normalizer(NormalizerConfig(redact=redact))
    cold = timed_pass(normalizer, events)
    return cold, timed_pass(normalizer, events)


def replay_mismatches(events: Sequence[Event], published: Sequence[Event]) -> int:
    """Lines whose id, replayed against the final templates, differs from the first one."""
    normalizer = Normalizer()
    for e in events:
        normalizer.normalize(e)
    again = [normalizer.normalize(e) for e in events]
    return sum(a.template_id != b.template_id for a, b in zip(again, published, strict=True))


def spread(label: str, us: Sequence[float]) -> str:
    """``label``: median, min-max and interquartile range of per-line times in µs."""
    q1, _, q3 = statistics.quantiles(us, n=4, method="inclusive")
    return (
        f"  {label:<15} median {statistics.median(us):6.2f} µs/line"
        f"  min-max {min(us):6.2f}-{max(us):<6.2f}  IQR {q1:6.2f}-{q3:<6.2f}"
        f"  ({1e6 / statistics.median(us):>9,.0f} lines/s)"
    )


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="folder searched for *_2k.log (Loghub-2k)")
    ap.add_argument("--repeat", type=int, default=15, help="rounds; each times both modes, cold and warm")
    args = ap.parse_args(argv)
    if args.repeat < 2:
        ap.error("--repeat must be at least 2 (a spread needs two rounds)")

    events = load_events(args.data)
    n = len(events)
    services = len({e.service for e in events})
    print(f"corpus: {args.data} ({n:,} lines, {services} services)")
    print(
        f"method: {args.repeat} rounds, each timing redaction off and on in alternating order "
        "(off-on, on-off, ...);\n"
        "        per mode a fresh Normalizer: cold = 1st pass (empty memos/miners), "
        "warm = 2nd pass, same data (steady state);\n"
        "        CPU time of the thread (time.thread_time); outputs dropped as produced; input frozen\n"
        "        out of the collector (gc.freeze); gc.collect() before each pass, gc on while timing;\n"
        "        no CPU pinning or frequency control; median and spread over rounds."
    )
    publisher = Normalizer()  # an untimed pass, for the checks below
    outputs = [publisher.normalize(e) for e in events]
    del publisher
    gc.freeze()  # the input and these outputs: not traversed by the timed passes' collections
    us: dict[tuple[str, bool], list[float]] = {(ph, r): [] for ph in PHASES for r in (False, True)}
    ratios: dict[str, list[float]] = {ph: [] for ph in PHASES}
    for i in range(args.repeat):
        order = (False, True) if i % 2 == 0 else (True, False)
        times = {redact: one_run(events, redact) for redact in order}
        for j, phase in enumerate(PHASES):
            for redact in (False, True):
                us[phase, redact].append(times[redact][j] / n * 1e6)
            ratios[phase].append(times[True][j] / times[False][j] - 1)
    for phase in PHASES:
        off, on = us[phase, False], us[phase, True]
        overhead = statistics.median(on) / statistics.median(off) - 1
        paired = statistics.median(ratios[phase])
        verdict = "within" if max(overhead, paired) <= TARGET else "over"
        print(f"{phase}:")
        print(spread("redaction off", off))
        print(spread("redaction on", on))
        print(
            f"  overhead: {overhead:+.1%} (ratio of medians), {paired:+.1%} (median of per-round ratios, "
            f"range {min(ratios[phase]):+.1%} to {max(ratios[phase]):+.1%}) -- {verdict} the "
            f"{TARGET:.0%} target"
        )
    changed = sum(a.message != b.message for a, b in zip(outputs, events, strict=True))
    print(f"messages changed by redaction: {changed:,} of {n:,}")
    mismatches = replay_mismatches(events, outputs)
    print(f"replay against the final templates: {mismatches:,} of {n:,} lines change id")


if __name__ == "__main__":
    main()
