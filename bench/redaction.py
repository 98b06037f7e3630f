"""Benchmark secret redaction: lines/s of ``Redactor.redact`` and how many lines it changes.

By default the corpus is the redaction test corpus (``tests/data/redaction``) plus
synthetic ordinary log lines; with ``--data DIR`` it is every ``*_2k.log`` under DIR
(the Loghub-2k layout, ``DIR/X/X_2k.log``). Printed: lines, best-of-``--repeat`` lines/s
and µs per line, the same for a redactor with every kind switched off (the fixed cost of
a call) and for the normaliser's :class:`ScreeningRedactor` in front of the redactor
(cold: a fresh screen, empty memos; warm: its second pass) with a check that it gives
the redactor's result on every line, and how many lines were changed. On real logs
every changed line is a false positive candidate, so a sample is printed -- redacted
text only, never the original.

With ``--compare-miner`` the normalizer's template step (``Masker`` + ``TemplateMiner``,
fresh per pass) is timed on the same lines without and with ``redact`` in front of it, and
the slowdown is printed: a stand-in for "normalizer throughput, redaction on vs off".

Usage: python bench/redaction.py [--data ../shared/data/loghub2k] [--repeat 5]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stream_processors.normalize.redaction import RedactionConfig, Redactor  # noqa: E402
from stream_processors.normalize.screen import ScreeningRedactor  # noqa: E402

CORPUS = ROOT / "tests" / "data" / "redaction"


def synthetic_lines(n: int, seed: int = 1) -> list[str]:
    """Ordinary service log lines with ids, hashes, IPs and durations but no secrets."""
    rnd = random.Random(seed)
    hexd = "0123456789abcdef"
    svcs = ["api", "billing", "auth", "worker", "gateway"]
    shapes: list[Callable[[], str]] = [
        lambda: f"GET /v1/orders/{rnd.randint(1, 99999)} 200 {rnd.randint(1, 900)}ms",
        lambda: f"request_id={''.join(rnd.choices(hexd, k=32))} status=200 bytes={rnd.randint(1, 10**6)}",
        lambda: f"deployed commit {''.join(rnd.choices(hexd, k=40))} to prod",
        lambda: (
            f"connection from 10.{rnd.randint(0, 255)}.{rnd.randint(0, 255)}.7:{rnd.randint(1024, 65535)}"
        ),
        lambda: f"pod api-7d9f8b6c5-{''.join(rnd.choices('bcdfghjklmnpqrstvwxz2456789', k=5))} ready",
        lambda: "org.apache.kafka.clients.consumer.internals.ConsumerCoordinator: committed offsets",
        lambda: f"user {rnd.randint(1, 10**6)} password reset email sent, token bucket refilled",
    ]
    out = []
    for i in range(n):
        ts = f"2024-06-{rnd.randint(10, 28)}T12:{i % 60:02d}:{rnd.randint(0, 59):02d}.{i % 1000:03d}Z"
        out.append(f"{ts} {rnd.choice(['INFO', 'WARN', 'ERROR'])} {rnd.choice(svcs)} {rnd.choice(shapes)()}")
    return out


def load_lines(data: Path | None, synthetic: int) -> list[str]:
    if data is not None:
        files = sorted(data.rglob("*_2k.log"))
        if not files:
            raise SystemExit(f"no *_2k.log files under {data}")
        return [ln for f in files for ln in f.read_text(encoding="utf-8", errors="replace").splitlines()]
    lines = []
    for name in ("secrets.txt", "lookalikes.txt"):
        for raw in (CORPUS / name).read_text(encoding="utf-8").splitlines():
            if raw and not raw.startswith("#"):
                lines.append(raw.split("\t")[0])
    return lines + synthetic_lines(synthetic)


def best_seconds(fn: Callable[[str], object], lines: Sequence[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for line in lines:
            fn(line)
        best = min(best, time.perf_counter() - t0)
    return best


def report(label: str, seconds: float, n: int) -> None:
    print(f"{label:<28} {n / seconds:>12,.0f} lines/s {seconds / n * 1e6:>8.2f} µs/line")


def screened_seconds(redactor: Redactor, lines: Sequence[str], repeat: int) -> tuple[float, float]:
    """Best seconds of a pass of ``ScreeningRedactor.redact``: cold (a fresh screen) and
    warm (the same screen's second pass)."""
    cold = warm = float("inf")
    for _ in range(repeat):
        screen = ScreeningRedactor(redactor)
        t0 = time.perf_counter()
        for line in lines:
            screen.redact(line)
        t1 = time.perf_counter()
        for line in lines:
            screen.redact(line)
        cold, warm = min(cold, t1 - t0), min(warm, time.perf_counter() - t1)
    return cold, warm


def compare_miner(redactor: Redactor, lines: Sequence[str], repeat: int) -> None:
    from stream_processors.normalize.templating.masking import Masker
    from stream_processors.normalize.templating.miner import TemplateMiner

    def run(with_redaction: bool) -> float:
        best = float("inf")
        for _ in range(repeat):
            miner = TemplateMiner(masker=Masker())
            t0 = time.perf_counter()
            if with_redaction:
                for line in lines:
                    miner.add(redactor.redact(line).text)
            else:
                for line in lines:
                    miner.add(line)
            best = min(best, time.perf_counter() - t0)
        return best

    off, on = run(False), run(True)
    report("mask+mine, redaction off", off, len(lines))
    report("mask+mine, redaction on", on, len(lines))
    print(f"throughput with redaction: {off / on:.1%} of without (slowdown {on / off - 1:.1%})")


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, help="folder searched for *_2k.log (Loghub-2k)")
    ap.add_argument("--synthetic", type=int, default=20_000, help="synthetic lines (default corpus)")
    ap.add_argument("--repeat", type=int, default=5, help="timed passes; the best is kept")
    ap.add_argument("--no-emails", action="store_true", help="do not redact email addresses")
    ap.add_argument("--sample", type=int, default=10, help="changed lines to print")
    ap.add_argument(
        "--compare-miner",
        action="store_true",
        help="also time the template masker+miner with and without redaction in front",
    )
    args = ap.parse_args(argv)

    lines = load_lines(args.data, args.synthetic)
    redactor = Redactor(RedactionConfig(emails=not args.no_emails))
    print(f"corpus: {args.data or 'test corpus + synthetic'} ({len(lines):,} lines)")
    on = best_seconds(redactor.redact, lines, args.repeat)
    report("redact (all kinds)", on, len(lines))
    off = Redactor(RedactionConfig(kinds=frozenset()))
    report("redact (no kinds: overhead)", best_seconds(off.redact, lines, args.repeat), len(lines))
    cold, warm = screened_seconds(redactor, lines, args.repeat)
    report("screened redact, cold", cold, len(lines))
    report("screened redact, warm", warm, len(lines))
    screen = ScreeningRedactor(redactor)
    agree = all(screen.redact(line) == redactor.redact(line) for line in lines)
    print(f"screened result equals the redactor's on every line: {'yes' if agree else 'NO'}")
    if args.compare_miner:
        compare_miner(redactor, lines, args.repeat)

    changed = [r for r in map(redactor.redact, lines) if r.changed]
    print(f"lines changed: {len(changed):,} of {len(lines):,} ({len(changed) / len(lines):.2%})")
    for r in changed[: args.sample]:
        kinds = ",".join(sorted(k.value for k in r.kinds))
        print(f"  [{kinds}] {r.text[:160]}")


if __name__ == "__main__":
    main()
