"""``seismo kafka start|stop|status`` and ``seismo redis start|stop|status``.

With ``SEISMO_KAFKA_BOOTSTRAP`` (or ``SEISMO_REDIS_URL``) set, Seismo uses that
service and manages none: ``start`` and ``stop`` refuse and say so, ``status``
reports only the configured service, never the unrelated local process.
"""

from __future__ import annotations

import typer

from seismo.cli_base import SeismoCommand, SeismoGroup
from seismo.cliutil import console, fail, safe_url, settings

kafka_app = typer.Typer(cls=SeismoGroup, help="Run a local single-node Kafka (KRaft) for development.",
                        no_args_is_help=True)
redis_app = typer.Typer(cls=SeismoGroup, help="Run a local redis-server for development.",
                        no_args_is_help=True)


def _kafka_is_remote(verb: str) -> None:
    s = settings()
    if s.kafka_bootstrap:
        raise fail(f"SEISMO_KAFKA_BOOTSTRAP is set ({s.kafka_bootstrap}): Seismo uses that broker and "
                   f"manages none, so there is nothing to {verb}; unset it to manage the local broker")


def _redis_is_remote(verb: str) -> None:
    s = settings()
    if s.redis_url:
        raise fail(f"SEISMO_REDIS_URL is set ({s.redis_url}): Seismo uses that Redis and manages none, "
                   f"so there is nothing to {verb}; unset it to manage the local redis-server")


@kafka_app.command(cls=SeismoCommand, name="start")
def kafka_start() -> None:
    """Fetch Kafka's jars (once) and start one KRaft broker on 127.0.0.1.  Idempotent."""
    from seismo.local.kafka import LocalKafka

    _kafka_is_remote("start")
    with console.status("starting Kafka (first run fetches its jars with Maven)…"):
        status = LocalKafka(settings()).start()
    pid = status.managed.pid if status.managed else "not managed by seismo"
    console.print(f"Kafka answers at [bold]{status.bootstrap}[/bold] (pid {pid})")


@kafka_app.command(cls=SeismoCommand, name="stop")
def kafka_stop() -> None:
    """Stop the broker `seismo kafka start` started (never any other process)."""
    from seismo.local.kafka import LocalKafka

    _kafka_is_remote("stop")
    stopped = LocalKafka(settings()).stop()
    console.print("Kafka stopped" if stopped else "no Kafka started by seismo is running")


@kafka_app.command(cls=SeismoCommand, name="status")
def kafka_status() -> None:
    """Say which broker Seismo uses, whether it answers, and the process behind it.

    Exits 0 when the broker answers, 1 when it does not."""
    from seismo.local.kafka import LocalKafka

    s = settings()
    st = LocalKafka(s).status()
    state = "[green]answers[/green]" if st.reachable else "[red]does not answer[/red]"
    where = " (SEISMO_KAFKA_BOOTSTRAP)" if s.kafka_bootstrap else " (local broker)"
    console.print(f"Kafka {st.bootstrap}{where}: {state}")
    if st.managed and not s.kafka_bootstrap:
        console.print(f"  started by seismo: pid {st.managed.pid}, log {st.managed.log_path}")
    if not st.reachable:
        raise typer.Exit(1)


@redis_app.command(cls=SeismoCommand, name="start")
def redis_start() -> None:
    """Start redis-server on 127.0.0.1 unless SEISMO_REDIS_URL is set.  Idempotent."""
    from seismo.local.redis import LocalRedis

    _redis_is_remote("start")
    st = LocalRedis(settings()).start()
    console.print(f"Redis answers at [bold]{safe_url(st.url)}[/bold]")


@redis_app.command(cls=SeismoCommand, name="stop")
def redis_stop() -> None:
    """Stop the redis-server `seismo redis start` started."""
    from seismo.local.redis import LocalRedis

    _redis_is_remote("stop")
    stopped = LocalRedis(settings()).stop()
    console.print("Redis stopped" if stopped else "no Redis started by seismo is running")


@redis_app.command(cls=SeismoCommand, name="status")
def redis_status() -> None:
    """Say which Redis Seismo uses and whether it answers (exit 0), or not (exit 1)."""
    from seismo.local.redis import LocalRedis

    s = settings()
    st = LocalRedis(s).status()
    state = "[green]answers[/green]" if st.reachable else "[red]does not answer[/red]"
    where = " (SEISMO_REDIS_URL)" if s.redis_url else " (local redis-server)"
    console.print(f"Redis {safe_url(st.url)}{where}: {state}")
    if st.managed and not s.redis_url:
        console.print(f"  started by seismo: pid {st.managed.pid}, log {st.managed.log_path}")
    if not st.reachable:
        raise typer.Exit(1)
