"""Bodies of the file-oriented ``seismo`` commands: simulate, templates, detect, and the poll pre-check.

:mod:`seismo.cli` keeps thin typer wrappers; everything here is plain functions that
return a one-line summary and raise :class:`CommandError` (message plus exit code) for
anything the user must fix.  Heavy libraries (numpy, river, boto3, kubernetes) are
imported inside the functions, never at import time, so ``seismo --help`` stays fast.
"""

from __future__ import annotations

import csv
import logging
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import TextIO, cast

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

BIG_FILE_BYTES = 1 << 20
"""Files at least this large get a progress bar (on stderr, transient)."""


class CommandError(Exception):
    """The user must fix an argument or an input file; ``code`` is the exit status (2: bad usage)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.message, self.code = message, code


def _open_out(stack: ExitStack, out: Path | None) -> TextIO:
    """``out`` opened for CSV writing, or stdout when None."""
    if out is None:
        return sys.stdout
    try:
        return stack.enter_context(out.open("w", encoding="utf-8", newline=""))
    except OSError as exc:
        raise CommandError(f"cannot write {out}: {exc.strerror}", 1) from None


def run_simulate(services: int, incidents: int, seed: int, out: Path, truth: Path,
                 duration_minutes: int) -> str:
    """Generate and write a simulation; return the summary line.  Raises CommandError on bad arguments."""
    from producers.simulate import DEFAULT_START, MIN_DURATION, simulate, write_simulation

    minimum = int(MIN_DURATION.total_seconds() // 60)
    if duration_minutes < minimum:
        raise CommandError(f"--duration-minutes must be at least {minimum}, not {duration_minutes}")
    try:
        events, ground = simulate(services, incidents, seed, start=DEFAULT_START,
                                  duration=timedelta(minutes=duration_minutes))
    except ValueError as exc:
        raise CommandError(f"cannot simulate: {exc}") from None
    try:
        write_simulation(events, ground, out, truth)
    except OSError as exc:
        raise CommandError(f"cannot write {exc.filename}: {exc.strerror}", 1) from None
    return (f"{len(events)} events written to {out}, {len(ground.incidents)} incidents injected "
            f"({services} services, {duration_minutes} min, seed {seed}); ground truth in {truth}")


def _lines(path: Path, progress: Progress) -> Iterator[str]:
    """The decoded lines of ``path`` (undecodable bytes replaced), advancing ``progress`` by bytes."""
    task = progress.add_task("templating", total=path.stat().st_size)
    with path.open("rb") as handle:
        for raw in handle:
            progress.advance(task, len(raw))
            yield raw.decode("utf-8", errors="replace")


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
    with ExitStack() as stack:
        progress = stack.enter_context(Progress(
            "[progress.description]{task.description}", BarColumn(), DownloadColumn(),
            TimeRemainingColumn(), console=err, transient=True,
            disable=file.stat().st_size < BIG_FILE_BYTES))

        def counting() -> Iterator[str]:
            nonlocal counted
            for line in _lines(file, progress):
                counted += 1
                yield line

        rows = templates_offline(counting(), fmt)
        progress.stop()
        writer = csv.writer(_open_out(stack, out))
        writer.writerow(CSV_HEADER)
        writer.writerows(rows)
    templates = len({row.event_id for row in rows})
    skipped = counted - len(rows)
    return (f"{counted} lines, {templates} templates"
            + (f", {skipped} lines skipped (blank or not {fmt})" if skipped else "")
            + (f"; written to {out}" if out else ""))


def _first_bad_row(path: Path) -> str:
    """Describe the first row of a ``timestamp,value`` CSV that does not parse (error path only)."""
    from models.series import parse_timestamp

    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            stamp, value = row.get("timestamp"), row.get("value")
            if stamp is None or value is None:
                return f"line {reader.line_num} has fewer than two fields"
            try:
                parse_timestamp(stamp)
            except ValueError:
                return f"line {reader.line_num}: timestamp {stamp!r} is not ISO-8601"
            try:
                float(value)
            except ValueError:
                return f"line {reader.line_num}: value {value!r} is not a number"
    return "malformed row"


def run_detect(file: Path, out: Path | None, seed: int) -> str:
    """Score the series in ``file``; write ``timestamp,value,score,is_anomaly`` to ``out`` or stdout.

    Returns the summary line.  Raises CommandError naming the first bad row of a malformed CSV.
    """
    from models.series import read_series_csv, score_series, write_scored_csv

    try:
        points = read_series_csv(file)
    except UnicodeDecodeError:
        raise CommandError(f"{file}: not a text CSV (it is not UTF-8)") from None
    except ValueError as exc:
        reason = str(exc) if str(exc).startswith(str(file)) else f"{file}: {_first_bad_row(file)}"
        raise CommandError(reason) from None
    except (TypeError, AttributeError):  # a short row: DictReader fills missing fields with None
        raise CommandError(f"{file}: {_first_bad_row(file)}") from None
    if not points:
        raise CommandError(f"{file}: has a timestamp,value header but no rows")
    scored = list(score_series(points, seed=seed))
    with ExitStack() as stack:
        write_scored_csv(scored, _open_out(stack, out))
    anomalies = sum(p.is_anomaly for p in scored)
    return f"{len(scored)} points, {anomalies} anomalies" + (f"; written to {out}" if out else "")


def check_poll_config(source: str, config: Path) -> None:
    """Fail fast, before Kafka is touched, on a bad config file or a source that cannot be polled.

    Raises CommandError (exit 2) naming the problem; imports the source's module (boto3,
    kubernetes …) so a missing dependency shows here too.
    """
    import importlib

    from producers.config import ConfigError, load_config
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


def configure_logging() -> None:
    """Log INFO and above to stderr, one line each (the long-running commands report this way)."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
