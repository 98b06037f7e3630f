"""Bodies of the file-oriented ``seismo`` commands: simulate, templates, detect, and the poll pre-check.

:mod:`seismo.cli` keeps thin typer wrappers; everything here is plain functions that
return a one-line summary and raise :class:`CommandError` (message plus exit code) for
anything the user must fix.  Heavy libraries (numpy, river, boto3, kubernetes) are
imported inside the functions, never at import time, so ``seismo --help`` stays fast.
"""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TextIO, cast

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from seismo.cliutil import EXIT_USAGE, UserError, plural

BIG_FILE_BYTES = 1 << 20
"""Files at least this large get a progress bar (on stderr, transient)."""
BIG_SERIES_ROWS = 20_000
"""Series at least this long get a progress bar while they are scored."""


class CommandError(UserError):
    """The user must fix an argument or an input file; ``code`` is the exit status (2: bad usage)."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message, code)


def _open_out(stack: ExitStack, out: Path | None) -> TextIO:
    """``out`` opened for CSV writing, or stdout when None."""
    if out is None:
        return sys.stdout
    try:
        return stack.enter_context(out.open("w", encoding="utf-8", newline=""))
    except OSError as exc:
        raise CommandError(f"cannot write {out}: {exc.strerror}", 1) from None


def run_simulate(services: int, incidents: int, seed: int, out: Path, truth: Path,
                 duration_minutes: int, err: Console) -> str:
    """Generate and write a simulation; return the summary line.  Raises CommandError on bad arguments."""
    from producers.simulate import DEFAULT_START, MIN_DURATION, simulate, write_simulation

    if out.resolve() == truth.resolve():
        raise CommandError(f"--out and --truth name the same file ({out}); the truth would overwrite "
                           "the events: give two different paths")
    minimum = int(MIN_DURATION.total_seconds() // 60)
    if duration_minutes < minimum:
        raise CommandError(f"--duration-minutes must be at least {minimum}, not {duration_minutes}")
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=err, transient=True) as bar:
        task = bar.add_task(f"simulating {services} services", total=None)

        def step(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total or None)

        try:
            events, ground = simulate(services, incidents, seed, start=DEFAULT_START,
                                      duration=timedelta(minutes=duration_minutes), progress=step)
        except ValueError as exc:
            raise CommandError(f"cannot simulate: {exc}") from None
    try:
        write_simulation(events, ground, out, truth)
    except OSError as exc:
        raise CommandError(f"cannot write {exc.filename}: {exc.strerror}", 1) from None
    return (f"{plural(len(events), 'event')} written to {out}, "
            f"{plural(len(ground.incidents), 'incident')} injected "
            f"({services} services, {duration_minutes} min, seed {seed}); ground truth in {truth}")


@dataclass
class _Decoded:
    """Lines of a log file that were not UTF-8: how many, and the first one's number."""

    count: int = 0
    first: int = 0


def _lines(path: Path, progress: Progress, bad: _Decoded) -> Iterator[str]:
    """The decoded, redacted lines of ``path``, advancing ``progress`` by bytes.

    Secrets become ``<SECRET:kind>`` with the normalizer's own redactor before anything is
    templated, as in the pipeline.  A line that is not UTF-8 is counted in ``bad`` and
    read as Latin-1 (every byte is a character there), so no byte turns into U+FFFD.
    """
    from stream_processors.normalize.redaction import Redactor

    redactor = Redactor()
    task = progress.add_task("templating", total=path.stat().st_size)
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            progress.advance(task, len(raw))
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                bad.count += 1
                bad.first = bad.first or number
                text = raw.decode("latin-1")
            yield redactor.redact(text).text


def run_templates(file: Path, fmt: str, out: Path | None, err: Console) -> str:
    """Write ``LineId,EventId,EventTemplate`` for ``file`` to ``out`` (stdout when None); return the summary.

    Raises CommandError for an unknown format before reading the file.
    """
    from stream_processors.normalize.templating.exceptions import UnknownLogFormat
    from stream_processors.normalize.templating.offline import CSV_HEADER, resolve_format, templates_offline

    try:
        resolve_format(fmt)
    except UnknownLogFormat as exc:
        raise CommandError(str(exc.args[0])) from None
    counted = 0
    bad = _Decoded()
    with ExitStack() as stack:
        progress = stack.enter_context(Progress(
            "[progress.description]{task.description}", BarColumn(), DownloadColumn(),
            TimeRemainingColumn(), console=err, transient=True,
            disable=file.stat().st_size < BIG_FILE_BYTES))

        def counting() -> Iterator[str]:
            nonlocal counted
            for line in _lines(file, progress, bad):
                counted += 1
                yield line

        rows = templates_offline(counting(), fmt)
        progress.stop()
        writer = csv.writer(_open_out(stack, out), lineterminator="\n")
        writer.writerow(CSV_HEADER)
        writer.writerows(rows)
    templates = len({row.event_id for row in rows})
    skipped = counted - len(rows)
    return (f"{plural(counted, 'line')}, {plural(templates, 'template')}"
            + (f", {plural(skipped, 'line')} skipped (blank or not {fmt})" if skipped else "")
            + (f"; written to {out}" if out else "")
            + (f"; {plural(bad.count, 'line')} not UTF-8 (first: line {bad.first}), read as Latin-1"
               if bad.count else ""))


def run_detect(file: Path, out: Path | None, seed: int, err: Console) -> str:
    """Score the series in ``file``; write ``timestamp,value,score,is_anomaly`` to ``out`` or stdout.

    Returns the summary line.  Raises CommandError naming the first bad row (see
    :mod:`seismo.series_csv` for what is checked) before anything is written.
    """
    from models.series import score_series
    from seismo.series_csv import SeriesError, read_series, write_scored

    try:
        rows = read_series(file)
    except SeriesError as exc:
        raise CommandError(str(exc)) from None
    if not rows:
        raise CommandError(f"{file}: has a timestamp,value header but no rows")
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=err, transient=True,
                  disable=len(rows) < BIG_SERIES_ROWS) as progress:
        task = progress.add_task("scoring", total=len(rows))
        scored = []
        for row, point in zip(rows, score_series(((r.timestamp, r.value) for r in rows), seed=seed),
                              strict=True):
            scored.append((row, point.score, point.is_anomaly))
            progress.advance(task)
    with ExitStack() as stack:
        write_scored(scored, _open_out(stack, out))
    anomalies = sum(flag for _, _, flag in scored)
    return (f"{plural(len(scored), 'point')}, {plural(anomalies, 'anomaly', 'anomalies')}"
            + (f"; written to {out}" if out else ""))


def check_poll_config(source: str, config: Path) -> None:
    """Fail fast, before Kafka is touched, on a bad config file or a source that cannot be polled.

    Raises CommandError (exit 2) naming the problem; imports the source's module (boto3,
    kubernetes …) so a missing dependency shows here too.
    """
    import importlib

    from producers.config import ConfigError, load_config, resolve_token
    from producers.poll import SOURCES, SourceName, section_of

    if source not in SOURCES:
        raise CommandError(f"seismo poll does not support {source!r} yet; choose one of {', '.join(SOURCES)}")
    module = importlib.import_module(f"producers.sources.{source}")
    if not hasattr(module, "open_streams"):
        raise CommandError(f"seismo poll {source} is not wired yet: producers/sources/{source}.py "
                           "has no open_streams()")
    try:
        section = section_of(load_config(config), cast("SourceName", source))
        if source == "cloudwatch":
            module.settings_from_section(section)
    except ConfigError as exc:
        raise CommandError(str(exc)) from None
    if source == "kubernetes" and not section.in_cluster:
        _check_kubeconfig(section.kubeconfig, config)
    if getattr(section, "token_env", None) and resolve_token(section, os.environ) is None:
        raise CommandError(f"no {source} token: ${section.token_env} is not set (named by {config}); "
                           f"export it, then `seismo doctor --config {config}` checks it")


def _check_kubeconfig(path: Path | None, config: Path) -> None:
    """Raise CommandError when the kubeconfig the poller would load is missing or unreadable."""
    from kubernetes.config import (  # type: ignore[import-untyped]
        ConfigException,
        list_kube_config_contexts,
    )

    where = str(path) if path else os.environ.get("KUBECONFIG", "~/.kube/config")
    try:
        list_kube_config_contexts(str(path) if path else None)
    except (ConfigException, OSError, ValueError) as exc:
        raise CommandError(f"cannot use the kubeconfig {where} (kubernetes.kubeconfig in {config}): "
                           f"{str(exc).rstrip('.')}; point kubeconfig at a readable file, or set "
                           "in_cluster: true inside a pod") from None
