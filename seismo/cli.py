"""The ``seismo`` command line.  Heavy imports happen inside the commands.

Errors: every mistake a user can make ends as ``error: <cause and fix>`` on stderr and
an exit code (2: fix what you typed; 1: a dependency or the run failed), never a
traceback (:class:`seismo.cli_base.SeismoGroup`).  Another sub-command group registers
here with one ``app.add_typer(...)`` line.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

import typer

from seismo import __version__
from seismo.cli_base import SeismoCommand, SeismoGroup
from seismo.cli_data import register as register_data_commands
from seismo.cli_local import kafka_app, redis_app
from seismo.cliutil import EXIT_FAILED, EXIT_USAGE, console, err, fail, print_warning, safe_url, settings

app = typer.Typer(
    cls=SeismoGroup,
    help="Seismo: streaming incident intelligence on Kafka, served over MCP.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(kafka_app, name="kafka")
app.add_typer(redis_app, name="redis")
app.add_typer(__import__("mcp_gateway.keys_cli").keys_cli.keys_app, name="keys")
app.add_typer(__import__("stream_processors.correlate.feedback_cli", fromlist=["_"]).feedback_app,
              name="feedback")
app.add_typer(__import__("stream_processors.embed.finetune_cli", fromlist=["_"]).embed_app, name="embed")
register_data_commands(app)


def _version(value: bool) -> None:
    if value:
        console.print(f"seismo {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Seismo: streaming incident intelligence on Kafka, served over MCP.

    Settings come from SEISMO_* environment variables (see the README); SEISMO_LOG_FORMAT=json
    makes every log line a JSON object.
    """


class WorkerRole(StrEnum):
    """Mirrors ``stream_processors.runtime.worker.ROLES``, kept light for --help."""

    all = "all"
    normalize = "normalize"
    correlate = "correlate"
    score = "score"


class Transport(StrEnum):
    stdio = "stdio"
    streamable_http = "streamable-http"


@app.command(cls=SeismoCommand)
def worker(
    role: Annotated[WorkerRole, typer.Option(
        help="all: every step (normalize, correlate, score); or one step, with more workers of "
        "other roles here or on other machines.")] = WorkerRole.all,
    processes: Annotated[int | None, typer.Option(
        min=1, max=64, help="Processes per step (default SEISMO_WORKER_PROCESSES, 1); each joins the "
        "step's consumer group, so up to one per partition share its work.")] = None,
    metrics_port: Annotated[int | None, typer.Option(
        min=1, max=65535, help="Serve Prometheus /metrics on this port (default "
        "SEISMO_WORKER_METRICS_PORT; off).")] = None,
) -> None:
    """Run the stream processors (normalize → correlate, and score) until Ctrl-C."""
    from seismo.local.redis import redis_answers
    from seismo.preflight import redis_fix, require_kafka, require_mask_rules

    s = settings(long_running=True)
    require_mask_rules(s)
    require_kafka(s)
    if s.state_backend == "redis" and not redis_answers(s.redis):
        print_warning(f"Redis at {safe_url(s.redis)} does not answer; the worker waits for it before it "
                      f"processes anything: {redis_fix(s)}")
    from stream_processors.runtime.worker import ROLES, run_worker

    chosen = next((r for r in ROLES if r == role.value), None)
    if chosen is None:
        raise fail(f"unknown role {role.value!r}: use one of {', '.join(ROLES)}", EXIT_USAGE)
    run_worker(s, chosen, processes, metrics_port)


@app.command(cls=SeismoCommand)
def gateway(
    transport: Annotated[Transport, typer.Option(help="How clients connect.")] = Transport.streamable_http,
    host: Annotated[str | None, typer.Option(help="Bind address (HTTP).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (HTTP), 1-65535.")] = None,
) -> None:
    """Serve the incident tables to MCP clients; HTTP endpoint at /mcp, health at /healthz."""
    _require_port(port)
    s = settings(long_running=True)
    mode: Literal["stdio", "streamable-http"] = (
        "stdio" if transport is Transport.stdio else "streamable-http"
    )
    h, p = host or s.gateway_host, port or s.gateway_port
    if mode != "stdio":
        _require_free_port(h, p)
        from mcp_gateway.settings import GatewaySettings

        gs = GatewaySettings()
        for var, path in (("SEISMO_GATEWAY_TLS_CERT", gs.tls_cert), ("SEISMO_GATEWAY_TLS_KEY", gs.tls_key)):
            if path is not None and not path.is_file():
                raise fail(f"{var}={path}: no such file; point it at a PEM file, or unset both "
                           "SEISMO_GATEWAY_TLS_CERT and SEISMO_GATEWAY_TLS_KEY to serve plain HTTP",
                           EXIT_USAGE)
        if (gs.tls_cert is None) != (gs.tls_key is None):
            raise fail("TLS needs both SEISMO_GATEWAY_TLS_CERT and SEISMO_GATEWAY_TLS_KEY; set the other one "
                       "or unset both", EXIT_USAGE)
        scheme = "https" if gs.tls_cert is not None else "http"
        err.print(f"MCP endpoint: {scheme}://{h}:{p}/mcp  (health: {scheme}://{h}:{p}/healthz)",
                  highlight=False)
    from mcp_gateway.app import run_gateway

    run_gateway(s, mode, h, p)


def _require_port(port: int | None) -> None:
    if port is not None and not 1 <= port <= 65535:
        raise fail(f"--port {port} is not a TCP port; use a number from 1 to 65535", EXIT_USAGE)


def _require_free_port(host: str, port: int) -> None:
    """Raise a one-line error when ``host:port`` cannot be bound (in use, or not an address here)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise fail(f"--host {host!r} is not an address of this machine ({exc.strerror}); "
                   "use 127.0.0.1 or 0.0.0.0", EXIT_USAGE) from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise fail(f"cannot listen on {host}:{port}: {exc.strerror}; choose another port with "
                       "--port or SEISMO_GATEWAY_PORT") from None


@app.command(cls=SeismoCommand)
def demo(
    port: Annotated[int | None, typer.Option(help="Port of the MCP endpoint, 1-65535.")] = None,
    exit_after: Annotated[float | None, typer.Option(
        min=0, help="Stop by itself after this many seconds (default: run until Ctrl-C).")] = None,
    keep: Annotated[bool, typer.Option(
        "--keep", help="Keep this run's topics, Redis keys and logs when it stops.")] = False,
    clean: Annotated[bool, typer.Option(
        "--clean", help="Only remove what earlier demo runs left behind, then exit.")] = False,
) -> None:
    """Start Kafka/Redis if needed, the worker and the gateway; feed a multi-source scenario.

    When it stops it removes its topics, Redis keys and logs (logs stay when it failed)."""
    from seismo.demo import DemoError, clean_all, run_demo

    _require_port(port)
    s = settings(long_running=True)
    if clean:
        console.print(f"removed {clean_all(s)}", highlight=False)
        return
    _require_free_port("127.0.0.1", port or s.gateway_port)
    if s.kafka_bootstrap:
        from seismo.preflight import require_kafka

        require_kafka(s)
    try:
        run_demo(s, console, port=port, exit_after=exit_after, clean_up=not keep)
    except DemoError as exc:
        raise fail(str(exc)) from exc


@app.command(cls=SeismoCommand)
def doctor(
    config: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False, readable=True, metavar="FILE",
        help="Poller config: also check each configured source's credentials and reachability.")] = None,
) -> None:
    """Check Kafka, Redis, the mask rules and the Java/Maven tools (and the poller's sources).

    One line each.  Exits 1 when a required check fails; Redis is required while
    SEISMO_STATE_BACKEND is redis."""
    from seismo.doctor import run_doctor

    if not run_doctor(settings(), console, config):
        raise typer.Exit(EXIT_FAILED)


class PollSource(StrEnum):
    """The sources ``seismo poll`` knows (mirrors ``producers.poll.SOURCES``, kept light for --help)."""

    kubernetes = "kubernetes"
    sentry = "sentry"
    cloudwatch = "cloudwatch"
    grafana = "grafana"


@app.command(cls=SeismoCommand)
def poll(
    source: Annotated[PollSource, typer.Argument(help="Which source to poll.", metavar="SOURCE")],
    config: Annotated[Path, typer.Option(exists=True, dir_okay=False, readable=True, metavar="FILE",
                                         help="Poller config, .toml or .yaml (see docs/sources.md).")],
    metrics_port: Annotated[int | None, typer.Option(
        min=0, max=65535, help="Serve the poller's Prometheus counters at http://HOST:PORT/metrics.")] = None,
    metrics_host: Annotated[str, typer.Option(
        help="Address of the metrics endpoint (0.0.0.0: every interface).")] = "127.0.0.1",
) -> None:
    """Poll one source into seismo.events.raw until Ctrl-C or SIGTERM (finishes the page in flight).

    Logs a one-line summary of its counters when it stops."""
    from seismo.commands import check_poll_config
    from seismo.preflight import require_kafka

    check_poll_config(source.value, config)
    s = settings(long_running=True)
    require_kafka(s)
    from producers.poll import poll_command
    from seismo.topics import ensure_topics

    # Create the topics with their policies first, so that the cursors topic is never
    # auto-created by the broker without compaction.
    ensure_topics(s, timeout=15)
    endpoint = (metrics_host, metrics_port) if metrics_port is not None else None
    raise typer.Exit(poll_command(s, source.value, config, endpoint))


def main() -> None:
    app()
