"""The ``seismo`` commands that move data: ingest, incidents, dlq, simulate, templates, detect.

:func:`register` adds them to the app in :mod:`seismo.cli`.  Errors are raised as
:class:`seismo.cliutil.UserError` (or ``CommandError``) and printed by the app's group.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from seismo.cliutil import EXIT_FAILED, EXIT_USAGE, console, err, fail, plural, settings
from seismo.render import OutputFormat

SHOWN_REASONS = 10
"""Rejection reasons ``seismo ingest`` prints by default (``--reasons`` changes it)."""


def ingest(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, metavar="FILE",
                                         help="JSON-lines events, one object per line.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate only; print why lines fail.")] = False,
    reasons: Annotated[int, typer.Option(
        min=0, help="How many rejection reasons to print (0: all of them).")] = SHOWN_REASONS,
) -> None:
    """Publish JSON-lines events to seismo.events.raw; invalid lines go to seismo.dlq.

    Prints the first reasons with their line numbers; `seismo dlq` reads them all later."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    from producers.exceptions import PublishError
    from producers.ingest import ingest_file
    from producers.publisher import KafkaPublisher
    from seismo.logs import kafka_logging
    from seismo.preflight import require_kafka
    from seismo.topics import Topics, ensure_topics

    s = settings()
    topics = Topics.from_settings(s)
    publisher = None
    if not dry_run:
        require_kafka(s)
        ensure_topics(s, timeout=15)
        publisher = KafkaPublisher(s.bootstrap, client_id="seismo-ingest", **kafka_logging())
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TimeRemainingColumn(), console=err, transient=True) as progress:
        task = progress.add_task("ingesting" if publisher else "validating", total=file.stat().st_size)
        try:
            summary = ingest_file(file, publisher, topics.raw, topics.dlq,
                                  on_line=lambda n: progress.advance(task, n))
        except PublishError as exc:
            raise fail(f"{exc}; nothing was lost: re-run the same ingest (ids dedupe)") from exc
    shown = summary.reasons if reasons == 0 else summary.reasons[:reasons]
    for reason in shown:
        err.print(f"{file}: {reason}", markup=False, highlight=False)
    if summary.rejected > len(shown):
        more = summary.rejected - len(shown)
        err.print(f"… and {plural(more, 'more rejected line')}: "
                  + ("--reasons 0 prints all" if dry_run else "`seismo dlq --component ingest` lists all"),
                  markup=False, highlight=False)
    verb = "valid" if dry_run else "published"
    console.print(f"{summary.published} {verb}, {summary.rejected} rejected"
                  + ("" if dry_run or not summary.rejected else f" (to {topics.dlq})")
                  + (f", {plural(summary.blank, 'blank line')}" if summary.blank else ""), highlight=False)
    if not summary.ok:
        raise typer.Exit(EXIT_FAILED)


def incidents(
    output: Annotated[OutputFormat, typer.Option("--output", "-o", help="table, json or csv.")]
    = OutputFormat.table,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --output json.")] = False,
    wide: Annotated[bool, typer.Option("--wide", help="Table with every column and whole titles.")] = False,
    status: Annotated[str | None, typer.Option(help="open or resolved")] = None,
    service: Annotated[str | None, typer.Option(help="Only incidents involving it.")] = None,
) -> None:
    """Print the incidents on seismo.incidents (latest state of each), newest update first."""
    from mcp_gateway.materializer import read_incidents
    from schemas.models import IncidentStatus
    from seismo.preflight import require_topic, unprocessed_events
    from seismo.render import incidents_csv, incidents_json, incidents_table
    from seismo.topics import Topics

    s = settings()
    try:
        st = IncidentStatus(status) if status else None
    except ValueError:
        raise fail(f"--status must be open or resolved, not {status!r}", EXIT_USAGE) from None
    topics = Topics.from_settings(s)
    require_topic(s, topics.incidents, "incidents are written there by `seismo worker`")
    try:
        store = read_incidents(s.bootstrap, topics.incidents)
    except TimeoutError as exc:
        raise fail(f"{exc}; the broker answers but the topic could not be read to its end") from exc
    items = store.query(status=st, service=service, limit=100_000).incidents
    fmt = OutputFormat.json if as_json else output
    if fmt is OutputFormat.json:
        print(incidents_json(items))
    elif fmt is OutputFormat.csv:
        print(incidents_csv(items), end="")
    else:
        incidents_table(items, console, wide=wide)
    if not items and store.query(limit=1).total == 0:
        waiting = unprocessed_events(s, topics.raw, s.group_id("normalize"))
        if waiting:
            err.print(f"{plural(waiting, 'event')} on {topics.raw} are not processed yet: incidents "
                      "come from `seismo worker`; start one (with the same SEISMO_* settings)",
                      markup=False, highlight=False)


def dlq(
    since: Annotated[str | None, typer.Option(
        help="Only letters logged after this: a duration (30m, 2h, 7d) or a time (2024-05-01T12:00:00Z).")]
    = None,
    component: Annotated[str | None, typer.Option(
        help="Only this component's letters (ingest, normalize …).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Every letter as JSON Lines on stdout.")] = False,
    last: Annotated[int, typer.Option(min=0, help="How many of the newest letters the table shows.")] = 20,
) -> None:
    """Read the dead letters on seismo.dlq: counts by component and kind, and the newest reasons."""
    from confluent_kafka import KafkaException

    from seismo.dlq import SinceError, counts, letters_json, parse_since, read_letters
    from seismo.preflight import topics_on_broker
    from seismo.render import utc
    from seismo.topics import Topics

    s = settings()
    try:
        after = parse_since(since) if since else None
    except SinceError as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    topic = Topics.from_settings(s).dlq
    if topic not in topics_on_broker(s):
        if not as_json:
            console.print(f"no dead letters: {topic} does not exist on {s.bootstrap} (nothing was "
                          "rejected with these settings; check SEISMO_TOPIC_PREFIX)", highlight=False)
        return
    try:
        letters = [x for x in read_letters(s.bootstrap, topic, after)
                   if component is None or x.component == component]
    except KafkaException as exc:
        raise fail(f"cannot read {topic} from {s.bootstrap}: {exc}") from None
    letters.sort(key=lambda x: x.timestamp)
    if as_json:
        print(letters_json(letters), end="")
        return
    scope = (f" from {component}" if component else "") + (f" since {utc(after)}" if after else "")
    console.print(f"{plural(len(letters), 'dead letter')}{scope} on {topic}", highlight=False)
    if not letters:
        return
    for (comp, kind), n in counts(letters).most_common():
        console.print(f"{n:>7}  {comp}  {kind}", markup=False, highlight=False)
    newest = letters[-last:] if last else []
    if newest:
        console.print(f"newest {plural(len(newest), 'letter')} (logged UTC, component, from, reason):",
                      highlight=False)
        for x in newest:
            console.print(f"{utc(x.timestamp)}  {x.component}  {x.origin}  {x.reason}", markup=False,
                          highlight=False, crop=False)


def simulate(
    out: Annotated[Path, typer.Option(dir_okay=False, metavar="FILE",
                                      help="Where to write the JSON-lines events.")],
    truth: Annotated[Path, typer.Option(dir_okay=False, metavar="FILE",
                                        help="Where to write the ground truth (JSON).")],
    services: Annotated[int, typer.Option(help="How many services in the estate (at least 1).")] = 12,
    incidents: Annotated[int, typer.Option(help="How many faults to inject (0 or more).")] = 4,
    seed: Annotated[int, typer.Option(help="Same seed, same files, byte for byte.")] = 0,
    duration_minutes: Annotated[int, typer.Option(help="Length of the run (at least 40).")] = 120,
) -> None:
    """Write a synthetic multi-service event stream with injected incidents, plus its ground truth.

    The events file feeds `seismo ingest` as is.
    """
    from seismo.commands import run_simulate

    console.print(run_simulate(services, incidents, seed, out, truth, duration_minutes, err),
                  markup=False, highlight=False)


def templates(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, metavar="FILE",
                                         help="Log file, one line per entry.")],
    fmt: Annotated[str, typer.Option("--format", help="raw (whole line) or loghub:SYSTEM, e.g. loghub:HDFS.")]
    = "raw",
    out: Annotated[Path | None, typer.Option(dir_okay=False, metavar="FILE",
                                             help="CSV to write (default: stdout).")] = None,
) -> None:
    """Mine log templates offline; write LineId,EventId,EventTemplate as CSV (Loghub's layout).

    Secrets are redacted first, as in the pipeline."""
    from seismo.commands import run_templates

    err.print(run_templates(file, fmt, out, err), markup=False, highlight=False)


def detect(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, metavar="FILE",
                                         help="CSV with timestamp,value columns, in time order.")],
    out: Annotated[Path | None, typer.Option(dir_okay=False, metavar="FILE",
                                             help="CSV to write (default: stdout).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the detectors.")] = 0,
) -> None:
    """Score a metric series in one streaming pass; write timestamp,value,score,is_anomaly as CSV."""
    from seismo.commands import run_detect

    err.print(run_detect(file, out, seed, err), markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    from seismo.cli_base import SeismoCommand

    for command in (ingest, incidents, dlq, simulate, templates, detect):
        app.command(cls=SeismoCommand)(command)
