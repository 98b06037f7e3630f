"""``seismo poll SOURCE --config FILE``: build one source's poller and run it.

Every source module exposes the same entry point::

    @asynccontextmanager
    async def open_streams(section, ctx: SourceContext, mapper: ServiceMapper,
                           environ: Mapping[str, str]) -> AsyncIterator[list[Stream]]

``section`` is the source's validated config section.  :func:`open_poller`
wires it to a publisher, a cursor store, a clock and metrics (tests pass
fakes); :func:`run_poller` is the production path (Kafka publisher, cursors
restored from ``seismo.cursors``, optionally ``GET /metrics``) and
:func:`poll_command` its blocking, signal-aware wrapper for the CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import random
import signal
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from producers.base import Poller, PollerConfig, SourceContext
from producers.config import ConfigError, PollersFile, PollSettings, load_config
from producers.cursors import CursorStore, KafkaCursorStore
from producers.exceptions import ProducerError
from producers.mapping import ServiceMapper
from producers.metrics import Metrics, RecordingMetrics
from producers.metrics_http import MetricsServer
from producers.publisher import EventPublisher, KafkaPublisher
from producers.ratelimit import Backoff, Clock, SystemClock, TokenBucket
from schemas.models import Source

log = logging.getLogger(__name__)

SourceName = Literal["sentry", "grafana", "kubernetes", "cloudwatch"]
SOURCES: tuple[str, ...] = get_args(SourceName)


@dataclass(frozen=True)
class Wiring:
    """Everything a poller needs besides its config section."""

    publisher: EventPublisher
    cursors: CursorStore
    raw_topic: str
    dlq_topic: str
    clock: Clock = field(default_factory=SystemClock)
    metrics: Metrics = field(default_factory=RecordingMetrics)
    environ: Mapping[str, str] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)


def section_of(config: PollersFile, source: SourceName) -> Any:
    """The source's config section; raise :class:`ConfigError` when the file has none."""
    section = getattr(config, source)
    if section is None:
        raise ConfigError(f"the poller config has no [{source}] section")
    return section


@asynccontextmanager
async def open_poller(source: SourceName, config: PollersFile, wiring: Wiring) -> AsyncIterator[Poller]:
    """A :class:`Poller` for ``source`` whose clients stay open inside the ``async with``."""
    section = section_of(config, source)
    module = importlib.import_module(f"producers.sources.{source}")
    if isinstance(section, PollSettings):
        settings = section
    else:  # a section the source module validates itself (cloudwatch)
        settings = PollSettings.model_validate(
            {k: v for k, v in section.items() if k in PollSettings.model_fields}
        )
    ctx = SourceContext(
        source=Source(source), clock=wiring.clock,
        limiter=TokenBucket(settings.rate_per_s, settings.burst, wiring.clock), metrics=wiring.metrics,
        backoff=Backoff(settings.backoff_base_s, settings.backoff_cap_s, settings.max_attempts),
        rng=wiring.rng, object_attempts=settings.object_attempts, park_s=settings.park_s,
    )
    mapper = ServiceMapper(config.mapping)
    async with module.open_streams(section, ctx, mapper, wiring.environ) as streams:
        yield Poller(
            PollerConfig(Source(source), wiring.raw_topic, wiring.dlq_topic, settings.interval_s,
                         settings.dedup_window, settings.max_pages_per_cycle),
            streams, wiring.publisher, wiring.cursors, wiring.clock, wiring.metrics,
        )


async def run_poller(
    settings: Any,
    source: SourceName,
    config_path: Path,
    stop: asyncio.Event | None = None,
    *,
    metrics: RecordingMetrics | None = None,
    metrics_endpoint: tuple[str, int] | None = None,
) -> RecordingMetrics:
    """Poll ``source`` into Kafka until ``stop`` is set (forever when None); return the metrics.

    ``settings`` is a :class:`seismo.settings.Settings`.  ``metrics`` (a fresh
    :class:`RecordingMetrics` when None) collects the counters; with
    ``metrics_endpoint=(host, port)`` they are served at ``http://host:port/metrics``
    while the poller runs.  Blocks at start while cursors are restored from the
    compacted cursor topic.  Raises :class:`ConfigError` for a bad file,
    :class:`ProducerError` for a fatal source error (e.g. :class:`producers.sources.AccessDenied`)
    and OSError when the metrics port cannot be bound.
    """
    from seismo.topics import Topics

    if source not in SOURCES:
        raise ConfigError(f"unknown source {source!r}; choose one of {', '.join(SOURCES)}")
    config = load_config(config_path)
    metrics = metrics if metrics is not None else RecordingMetrics()
    async with contextlib.AsyncExitStack() as stack:
        if metrics_endpoint is not None:
            server = await stack.enter_async_context(MetricsServer(metrics, *metrics_endpoint))
            log.info("serving poller metrics at %s", server.url)
        topics = Topics.from_settings(settings)
        publisher = KafkaPublisher(settings.bootstrap, client_id=f"seismo-poll-{source}")
        cursors = await asyncio.to_thread(
            KafkaCursorStore.restore, settings.bootstrap, topics.cursors, publisher
        )
        wiring = Wiring(publisher, cursors, topics.raw, topics.dlq, metrics=metrics, environ=dict(os.environ))
        poller = await stack.enter_async_context(open_poller(source, config, wiring))
        await poller.run(stop or asyncio.Event())
    return metrics


def _token_hint(exc: ProducerError, source: str, config_path: Path) -> str:
    """For a 401: which token was refused and where it came from (the fix is the operator's)."""
    from producers.config import ConfigError, load_config
    from producers.sources import AccessDenied

    if not isinstance(exc, AccessDenied) or exc.status != 401:
        return ""
    try:
        section = getattr(load_config(config_path), source, None)
    except ConfigError:
        return ""
    if section is None or not hasattr(section, "token_env"):
        return ""
    origin = f"the {source}.token in {config_path}" if section.token is not None else section.token_env
    return (f" — the token from {origin} was refused: check that it is current and has the scopes "
            "docs/sources.md lists")


def poll_command(
    settings: Any, source: str, config_path: Path, metrics_endpoint: tuple[str, int] | None = None
) -> int:
    """Blocking CLI entry: run until SIGINT/SIGTERM, finishing the page in flight; return an exit code.

    Logs a one-line summary of the counters when the poller stops (the full Prometheus
    text at DEBUG); with ``metrics_endpoint=(host, port)`` serves them at ``/metrics``.
    """

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        metrics = RecordingMetrics()
        try:
            await run_poller(settings, source, config_path, stop,  # type: ignore[arg-type]
                             metrics=metrics, metrics_endpoint=metrics_endpoint)
        except ProducerError as exc:
            log.error("seismo poll %s: %s%s", source, exc, _token_hint(exc, source, config_path))
            log.info("poller %s stopped: %s", source, metrics.summary())
            return 2
        except OSError as exc:
            host, port = metrics_endpoint or ("?", 0)
            log.error("seismo poll %s: cannot serve metrics on %s:%s: %s", source, host, port, exc.strerror)
            return 2
        log.info("poller %s stopped: %s", source, metrics.summary())
        log.debug("final poller metrics\n%s", metrics.render())
        return 0

    return asyncio.run(main())
