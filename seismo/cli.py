"""The ``seismo`` command line.  Heavy imports happen inside the commands."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.markup import escape

from seismo.settings import Settings

app = typer.Typer(
    help="Seismo: streaming incident intelligence on Kafka, served over MCP.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
kafka_app = typer.Typer(help="Run a local single-node Kafka (KRaft) for development.",
                        no_args_is_help=True)
redis_app = typer.Typer(help="Run a local redis-server for development.", no_args_is_help=True)
app.add_typer(kafka_app, name="kafka")
app.add_typer(redis_app, name="redis")

console = Console()
err = Console(stderr=True)


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


@kafka_app.command("start")
def kafka_start() -> None:
    """Fetch Kafka's jars (once) and start one KRaft broker on 127.0.0.1.  Idempotent."""
    from seismo.local.kafka import LocalKafka
    from seismo.local.process import LocalServiceError

    try:
        with console.status("starting Kafka (first run fetches its jars with Maven)…"):
            status = LocalKafka(Settings()).start()
    except LocalServiceError as exc:
        raise _fail(str(exc)) from exc
    pid = status.managed.pid if status.managed else "not managed by seismo"
    console.print(f"Kafka answers at [bold]{status.bootstrap}[/bold] (pid {pid})")


@kafka_app.command("stop")
def kafka_stop() -> None:
    """Stop the broker `seismo kafka start` started (never any other process)."""
    from seismo.local.kafka import LocalKafka

    stopped = LocalKafka(Settings()).stop()
    console.print("Kafka stopped" if stopped else "no Kafka started by seismo is running")


@kafka_app.command("status")
def kafka_status() -> None:
    """Say which broker Seismo uses, whether it answers, and the process behind it.

    Exits 0 when the broker answers, 1 when it does not."""
    from seismo.local.kafka import LocalKafka

    st = LocalKafka(Settings()).status()
    state = "[green]answers[/green]" if st.reachable else "[red]does not answer[/red]"
    console.print(f"Kafka {st.bootstrap}: {state}")
    if st.managed:
        console.print(f"  started by seismo: pid {st.managed.pid}, log {st.managed.log_path}")
    if not st.reachable:
        raise typer.Exit(1)


@redis_app.command("start")
def redis_start() -> None:
    """Start redis-server on 127.0.0.1 unless SEISMO_REDIS_URL is set.  Idempotent."""
    from seismo.local.process import LocalServiceError
    from seismo.local.redis import LocalRedis

    try:
        st = LocalRedis(Settings()).start()
    except LocalServiceError as exc:
        raise _fail(str(exc)) from exc
    console.print(f"Redis answers at [bold]{st.url}[/bold]")


@redis_app.command("stop")
def redis_stop() -> None:
    """Stop the redis-server `seismo redis start` started."""
    from seismo.local.redis import LocalRedis

    stopped = LocalRedis(Settings()).stop()
    console.print("Redis stopped" if stopped else "no Redis started by seismo is running")


@redis_app.command("status")
def redis_status() -> None:
    """Say which Redis Seismo uses and whether it answers (exit 0), or not (exit 1)."""
    from seismo.local.redis import LocalRedis

    st = LocalRedis(Settings()).status()
    state = "[green]answers[/green]" if st.reachable else "[red]does not answer[/red]"
    console.print(f"Redis {st.url}: {state}")
    if not st.reachable:
        raise typer.Exit(1)


@app.command()
def worker(
    role: Annotated[
        str,
        typer.Option(
            help="all: Faust agents (normalize, correlate) plus the score runtime in a child "
            "process; stream: the Faust agents only; score: the score runtime only."
        ),
    ] = "all",
) -> None:
    """Run the stream processors (normalize → correlate, and score) until Ctrl-C."""
    from stream_processors.runtime.worker import ROLES, run_worker

    for choice in ROLES:
        if role == choice:
            run_worker(Settings(), choice)
            return
    raise _fail(f"unknown role {role!r}: use one of {', '.join(ROLES)}", 2)


@app.command()
def gateway(
    transport: Annotated[
        str, typer.Option(help="stdio or streamable-http")
    ] = "streamable-http",
    host: Annotated[str | None, typer.Option(help="Bind address (HTTP).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (HTTP).")] = None,
) -> None:
    """Serve the incident tables to MCP clients; HTTP endpoint at /mcp, health at /healthz."""
    from mcp_gateway.app import run_gateway

    if transport not in ("stdio", "streamable-http"):
        raise _fail(f"unknown transport {transport!r}: use stdio or streamable-http", 2)
    settings = Settings()
    mode: Literal["stdio", "streamable-http"] = (
        "stdio" if transport == "stdio" else "streamable-http"
    )
    h, p = host or settings.gateway_host, port or settings.gateway_port
    if mode != "stdio":
        err.print(f"MCP endpoint: http://{h}:{p}/mcp  (health: http://{h}:{p}/healthz)")
    run_gateway(settings, mode, h, p)


@app.command()
def ingest(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True,
                                         help="JSON-lines events, one object per line.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate only.")] = False,
) -> None:
    """Publish JSON-lines events to seismo.events.raw; invalid lines go to seismo.dlq."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    from producers.exceptions import PublishError
    from producers.ingest import ingest_file
    from producers.publisher import KafkaPublisher
    from seismo.topics import Topics, ensure_topics

    settings = Settings()
    topics = Topics.from_settings(settings)
    publisher = None
    if not dry_run:
        from confluent_kafka import KafkaException

        try:
            ensure_topics(settings, timeout=15)
        except KafkaException as exc:
            raise _fail(f"Kafka at {settings.bootstrap} is not reachable ({exc}); "
                        "run `seismo kafka start` or set SEISMO_KAFKA_BOOTSTRAP") from exc
        publisher = KafkaPublisher(settings.bootstrap, client_id="seismo-ingest")
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TimeRemainingColumn(), console=err, transient=True) as progress:
        task = progress.add_task("ingesting" if publisher else "validating",
                                 total=file.stat().st_size)
        try:
            summary = ingest_file(file, publisher, topics.raw, topics.dlq,
                                  on_line=lambda n: progress.advance(task, n))
        except PublishError as exc:
            raise _fail(f"{exc}; nothing was lost: re-run the same ingest (ids dedupe)") from exc
    verb = "valid" if dry_run else "published"
    console.print(f"{summary.published} {verb}, {summary.rejected} rejected"
                  + ("" if dry_run else f" (to {topics.dlq})")
                  + (f", {summary.blank} blank lines" if summary.blank else ""))
    if not summary.ok:
        raise typer.Exit(1)


@app.command()
def incidents(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    status: Annotated[str | None, typer.Option(help="open or resolved")] = None,
    service: Annotated[str | None, typer.Option(help="Only incidents involving it.")] = None,
) -> None:
    """Print the incidents on seismo.incidents (latest state of each)."""
    from mcp_gateway.materializer import read_incidents
    from schemas.models import IncidentStatus
    from seismo.render import incidents_json, incidents_table
    from seismo.topics import Topics

    settings = Settings()
    try:
        st = IncidentStatus(status) if status else None
    except ValueError as exc:
        raise _fail(f"--status must be open or resolved, not {status!r}", 2) from exc
    try:
        store = read_incidents(settings.bootstrap, Topics.from_settings(settings).incidents)
    except TimeoutError as exc:
        raise _fail(f"{exc}; is Kafka running? (`seismo kafka status`)") from exc
    items = store.query(status=st, service=service, limit=100_000).incidents
    if as_json:
        print(incidents_json(items))
    else:
        incidents_table(items, console)


@app.command()
def demo(
    port: Annotated[int | None, typer.Option(help="Port of the MCP endpoint.")] = None,
    exit_after: Annotated[float | None, typer.Option(
        help="Stop by itself after this many seconds (default: run until Ctrl-C).")] = None,
) -> None:
    """Start Kafka/Redis if needed, the worker and the gateway; feed a multi-source scenario."""
    from seismo.demo import DemoError, run_demo

    try:
        run_demo(Settings(), console, port=port, exit_after=exit_after)
    except DemoError as exc:
        raise _fail(str(exc)) from exc


@app.command()
def doctor(
    config: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False, readable=True,
        help="Poller config: also check each configured source's credentials and reachability.")] = None,
) -> None:
    """Check Kafka, Redis and the Java/Maven tools (and the poller's sources), one line each.

    Exits 1 when a required check fails."""
    from seismo.doctor import run_doctor

    if not run_doctor(Settings(), console, config):
        raise typer.Exit(1)


class PollSource(StrEnum):
    """The sources ``seismo poll`` knows (mirrors ``producers.poll.SOURCES``, kept light for --help)."""

    kubernetes = "kubernetes"
    sentry = "sentry"
    cloudwatch = "cloudwatch"
    grafana = "grafana"


@app.command()
def simulate(
    out: Annotated[Path, typer.Option(dir_okay=False, help="Where to write the JSON-lines events.")],
    truth: Annotated[Path, typer.Option(dir_okay=False, help="Where to write the ground truth (JSON).")],
    services: Annotated[int, typer.Option(help="How many services in the estate (at least 1).")] = 12,
    incidents: Annotated[int, typer.Option(help="How many faults to inject (0 or more).")] = 4,
    seed: Annotated[int, typer.Option(help="Same seed, same files, byte for byte.")] = 0,
    duration_minutes: Annotated[int, typer.Option(help="Length of the run (at least 40).")] = 120,
) -> None:
    """Write a synthetic multi-service event stream with injected incidents, plus its ground truth.

    The events file feeds `seismo ingest` as is.
    """
    from seismo.commands import CommandError, run_simulate

    try:
        console.print(run_simulate(services, incidents, seed, out, truth, duration_minutes),
                      markup=False, highlight=False, soft_wrap=True)
    except CommandError as exc:
        raise _fail(exc.message, exc.code) from exc


@app.command()
def poll(
    source: Annotated[PollSource, typer.Argument(help="Which source to poll.")],
    config: Annotated[Path, typer.Option(exists=True, dir_okay=False, readable=True,
                                         help="Poller config, .toml or .yaml (see docs/sources.md).")],
    metrics_port: Annotated[int | None, typer.Option(
        min=0, max=65535, help="Serve the poller's Prometheus counters at http://HOST:PORT/metrics.")] = None,
    metrics_host: Annotated[str, typer.Option(
        help="Address of the metrics endpoint (0.0.0.0: every interface).")] = "127.0.0.1",
) -> None:
    """Poll one source into seismo.events.raw until Ctrl-C or SIGTERM (finishes the page in flight).

    Logs a one-line summary of its counters when it stops."""
    from seismo.commands import CommandError, check_poll_config, configure_logging

    try:
        check_poll_config(source.value, config)
    except CommandError as exc:
        raise _fail(exc.message, exc.code) from exc
    from producers.poll import poll_command
    from seismo.local.kafka import broker_answers

    settings = Settings()
    if not broker_answers(settings.bootstrap, timeout=10):
        raise _fail(f"Kafka at {settings.bootstrap} does not answer; run `seismo kafka start` "
                    "or set SEISMO_KAFKA_BOOTSTRAP")
    from seismo.topics import ensure_topics

    # Create the topics with their policies first, so that the cursors topic is never
    # auto-created by the broker without compaction.
    ensure_topics(settings, timeout=15)
    configure_logging()
    endpoint = (metrics_host, metrics_port) if metrics_port is not None else None
    raise typer.Exit(poll_command(settings, source.value, config, endpoint))


@app.command()
def templates(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True,
                                         help="Log file, one line per entry.")],
    fmt: Annotated[str, typer.Option("--format", help="raw (whole line) or loghub:SYSTEM, e.g. loghub:HDFS.")]
    = "raw",
    out: Annotated[Path | None, typer.Option(dir_okay=False, help="CSV to write (default: stdout).")] = None,
) -> None:
    """Mine log templates offline; write LineId,EventId,EventTemplate as CSV (Loghub's layout)."""
    from seismo.commands import CommandError, run_templates

    try:
        summary = run_templates(file, fmt, out, err)
    except CommandError as exc:
        raise _fail(exc.message, exc.code) from exc
    err.print(summary, markup=False, highlight=False, soft_wrap=True)


@app.command()
def detect(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True,
                                         help="CSV with timestamp,value columns.")],
    out: Annotated[Path | None, typer.Option(dir_okay=False, help="CSV to write (default: stdout).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the detectors.")] = 0,
) -> None:
    """Score a metric series in one streaming pass; write timestamp,value,score,is_anomaly as CSV."""
    from seismo.commands import CommandError, run_detect

    try:
        summary = run_detect(file, out, seed)
    except CommandError as exc:
        raise _fail(exc.message, exc.code) from exc
    err.print(summary, markup=False, highlight=False, soft_wrap=True)


def main() -> None:
    app()
