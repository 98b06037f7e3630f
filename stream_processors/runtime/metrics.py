"""The stream runtime's Prometheus metrics: names in one place, one object per step process.

Every worker process records into prometheus-client.  A worker that runs several
processes (``seismo worker --role all`` or ``--processes N``) sets
``PROMETHEUS_MULTIPROC_DIR`` for its children before they start, and serves the
sum over all of them on one ``/metrics`` endpoint (:func:`serve`); a single-process
worker serves its own registry.  Scrape ``http://HOST:PORT/metrics``.

Series (``step`` is normalize, correlate or score):

* ``seismo_step_events_in_total{step}`` — records taken from the input topics;
* ``seismo_step_events_out_total{step,topic}`` — records sent (acknowledged at the next checkpoint);
* ``seismo_step_dead_letters_total{step,error_type}`` — records sent to ``seismo.dlq``;
* ``seismo_step_replay_skipped_total{step}`` — records after the last commit that a checkpoint
  had already saved into the states (a commit that did not land), skipped rather than applied twice;
* ``seismo_step_batch_seconds{step}`` — time to process one batch (histogram);
* ``seismo_step_checkpoint_seconds{step}`` — outputs acknowledged → states saved → offsets committed;
* ``seismo_step_consumer_lag{step,topic,partition}`` — messages between the committed
  position and the partition's end, refreshed at every checkpoint;
* ``seismo_step_event_time_lag_seconds{step}`` — now minus the newest event time processed;
* ``seismo_state_store_seconds{step,op}`` / ``seismo_state_store_errors_total{step,op}``;
* ``seismo_embedder_calls_total`` / ``seismo_embedder_cache_hits_total{layer}`` — the
  normalize step's template embeddings (engine runs; hits in the LRU or Redis).
"""

from __future__ import annotations

import os
from typing import Literal

from confluent_kafka import Consumer, KafkaException, TopicPartition

MetricName = Literal[
    "seismo_step_events_in_total",
    "seismo_step_events_out_total",
    "seismo_step_dead_letters_total",
    "seismo_step_replay_skipped_total",
    "seismo_step_batch_seconds",
    "seismo_step_checkpoint_seconds",
    "seismo_step_consumer_lag",
    "seismo_step_event_time_lag_seconds",
    "seismo_state_store_seconds",
    "seismo_state_store_errors_total",
    "seismo_embedder_calls_total",
    "seismo_embedder_cache_hits_total",
]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _strip(name: MetricName) -> str:
    # prometheus-client appends _total to counters itself
    return name[: -len("_total")] if name.endswith("_total") else name


class _Series:
    """Every series of this process (created once: prometheus-client refuses a name twice)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        live: Literal["livemax", "all"] = "livemax" if os.environ.get(MULTIPROC_ENV) else "all"
        self.events_in = Counter(_strip("seismo_step_events_in_total"), "Records consumed.", ["step"])
        self.events_out = Counter(
            _strip("seismo_step_events_out_total"), "Records produced.", ["step", "topic"]
        )
        self.dead_letters = Counter(
            _strip("seismo_step_dead_letters_total"), "Records dead-lettered.", ["step", "error_type"]
        )
        self.replay_skipped = Counter(
            _strip("seismo_step_replay_skipped_total"),
            "Records after the last commit that the saved states already held (skipped on replay).", ["step"],
        )
        self.batch_seconds = Histogram(
            "seismo_step_batch_seconds", "Processing time of one batch.", ["step"], buckets=_BUCKETS
        )
        self.checkpoint_seconds = Histogram(
            "seismo_step_checkpoint_seconds", "Checkpoint duration.", ["step"], buckets=_BUCKETS
        )
        self.consumer_lag = Gauge(
            "seismo_step_consumer_lag", "Messages behind the partition end.",
            ["step", "topic", "partition"], multiprocess_mode=live,
        )
        self.event_time_lag = Gauge(
            "seismo_step_event_time_lag_seconds", "Now minus the newest event time processed.",
            ["step"], multiprocess_mode=live,
        )
        self.store_seconds = Histogram(
            "seismo_state_store_seconds", "State store call latency.", ["step", "op"], buckets=_BUCKETS
        )
        self.store_errors = Counter(
            _strip("seismo_state_store_errors_total"), "State store calls that failed.", ["step", "op"]
        )
        self.embedder_calls = Counter(
            _strip("seismo_embedder_calls_total"), "Embedding engine runs.", ["step"]
        )
        self.embedder_hits = Counter(
            _strip("seismo_embedder_cache_hits_total"), "Template vectors served from a cache.",
            ["step", "layer"],
        )


_series: _Series | None = None


def series() -> _Series:
    """This process's series, created on first use (after the worker chose multiprocess or not)."""
    global _series
    if _series is None:
        _series = _Series()
    return _series


def serve(port: int, host: str = "0.0.0.0") -> None:  # scraped from other pods
    """Serve ``/metrics`` in a daemon thread: the multiprocess sum when the directory is set."""
    from prometheus_client import CollectorRegistry, start_http_server

    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        start_http_server(port, addr=host, registry=registry)
    else:
        start_http_server(port, addr=host)


def refresh_lag(consumer: Consumer, committed: list[TopicPartition], step: str) -> None:
    """Set the consumer-lag gauge of each committed partition (high watermark minus committed offset).

    The high watermark is the one the consumer's last fetch response brought (librdkafka keeps it),
    not a new ListOffsets request: that request queues behind the connection's pending long-poll
    fetch on the broker, and blocked the step's loop 60-200 ms per checkpoint.  A partition whose
    watermark is not known yet keeps its last value."""
    lag = series().consumer_lag
    for tp in committed:
        try:
            _, high = consumer.get_watermark_offsets(tp, cached=True)
        except KafkaException:
            continue
        if high < 0:  # OFFSET_INVALID: no fetch response for it yet
            continue
        lag.labels(step, tp.topic, str(tp.partition)).set(max(0, high - tp.offset))
