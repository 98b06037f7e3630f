"""The score step's runtime: :class:`~stream_processors.score.Scorer` on confluent-kafka, in batches.

Why not a Faust agent like normalize and correlate: the score agent's target is
tens of thousands of events a second on one worker, and Faust (aiokafka, one
``await`` chain per event) topped out near 1.4k events/s here with the work the
scorer does (docs/decisions.md has the measurements).  librdkafka fetches and
batches in C; this loop only decodes, scores and publishes.

The loop (``run`` blocks until :meth:`ScoreRuntime.stop`):

1. ``consume`` up to ``batch_size`` messages of ``seismo.events.enriched``;
2. load the states of services not seen since the last assignment, in one
   round trip (``StateStore.load_many``);
3. decode each message (:meth:`~schemas.codec.AvroCodec.decode_plain` →
   :class:`~stream_processors.score.observation.Observation`), fold it in, queue its
   anomalies on ``seismo.anomalies`` (key = service); a message that cannot be
   decoded or scored goes to ``seismo.dlq`` with the reason;
4. every ``checkpoint_s``, whenever a fetch comes back short (the loop caught up
   with the topic), and on revocation and stop, a **checkpoint**: every
   queued anomaly and dead letter acknowledged by the broker (``acks=all``,
   idempotent producer) → the states touched since the last checkpoint saved in
   one round trip → the offsets after the last processed message committed.

A crash replays at most the events after the last commit; their effects may
already be in the saved states, and the scorer ignores an event id it
remembers, so a replay never changes a state twice.  Anomalies of replayed
events are published again with the same deterministic ids (at-least-once).
The consumer group is ``{app_id}-score``, apart from the Faust agents' group.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

from confluent_kafka import Consumer, Message, TopicPartition

from producers.publisher import KafkaPublisher
from schemas.codec import codec_for
from schemas.exceptions import SchemaError
from schemas.models import DeadLetter
from seismo.settings import Settings
from seismo.topics import Topics
from stream_processors.exceptions import InvalidEvent
from stream_processors.runtime.state import StateStore
from stream_processors.score.observation import Observation
from stream_processors.score.scorer import ScoreConfig, Scorer, ServiceScore

log = logging.getLogger(__name__)
COMPONENT = "score"


def score_config(settings: Settings) -> ScoreConfig:
    return ScoreConfig(
        window_s=settings.score_window_s,
        z_threshold=settings.score_z_threshold,
        novelty_threshold=settings.score_novelty_threshold,
        probation_windows=settings.score_probation_windows,
    )


class ScoreRuntime:
    """One scoring consumer.  Not thread-safe, except :meth:`stop`."""

    def __init__(self, settings: Settings, store: StateStore, scorer: Scorer | None = None) -> None:
        self.topics = Topics.from_settings(settings)
        self.store = store
        self.scorer = scorer or Scorer(score_config(settings))
        self.batch_size = settings.score_batch_size
        self.checkpoint_s = settings.score_checkpoint_s
        self.group_id = f"{settings.app_id}-score"
        conf: dict[str, Any] = {
            "bootstrap.servers": settings.bootstrap,
            "group.id": self.group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": int(settings.worker_session_timeout_s * 1000),
            "fetch.wait.max.ms": 100,
            "log_level": 3,
        }
        if settings.worker_instance_id:  # static membership, like the Faust agents
            conf["group.instance.id"] = f"{settings.worker_instance_id}-score"
        self._consumer = Consumer(conf)
        self._publisher = KafkaPublisher(settings.bootstrap, client_id=f"{settings.app_id}-score")
        self._codec, self._anomaly_codec, self._dlq_codec = (
            codec_for("event"), codec_for("anomaly"), codec_for("dead_letter"),
        )
        self._loop = asyncio.new_event_loop()
        self._states: dict[str, ServiceScore] = {}
        self._touched: set[str] = set()
        self._offsets: dict[tuple[str, int], int] = {}
        self._stop = threading.Event()

    def stop(self) -> None:
        """Ask :meth:`run` to checkpoint and return.  Thread-safe, never blocks."""
        self._stop.set()

    def run(self) -> None:
        """Consume until :meth:`stop`; checkpoint on the way out.  Raises PublishError
        when the broker refuses output (nothing past the last checkpoint is committed)."""
        self._consumer.subscribe([self.topics.enriched], on_revoke=self._revoked)
        last = time.monotonic()
        try:
            while not self._stop.is_set():
                messages = self._consumer.consume(self.batch_size, timeout=0.2)
                if messages:
                    self._process(messages)
                # A short batch means the fetch waited out its timeout: caught up, so checkpoint
                # now (commits stay fresh when traffic is light; a backlog checkpoints per interval).
                caught_up = len(messages) < self.batch_size
                if self._offsets and (caught_up or time.monotonic() - last >= self.checkpoint_s):
                    self.checkpoint()
                    last = time.monotonic()
            self.checkpoint()
        finally:
            self._consumer.close()
            self._loop.run_until_complete(self._close_store())
            self._loop.close()

    async def _close_store(self) -> None:
        close = getattr(self.store, "close", None)
        if close is not None:
            await close()

    def _process(self, messages: list[Message]) -> None:
        missing = {_key(m) for m in messages if m.error() is None} - {""} - self._states.keys()
        if missing:
            keys = {f"score:{s}": s for s in missing}
            saved = self._loop.run_until_complete(self.store.load_many(list(keys)))
            for key, service in keys.items():
                self._restore(service, saved.get(key))
        states, scorer, publish = self._states, self.scorer, self._publisher.publish
        topic, encode = self.topics.anomalies, self._anomaly_codec.encode
        for message in messages:
            err = message.error()
            if err is not None:
                if err.fatal():
                    raise RuntimeError(f"consumer failed: {err.str()}")
                log.warning("consume error: %s", err.str())
                continue
            try:
                obs = Observation.from_record(self._codec.decode_plain(message.value() or b""))
                state = states.get(obs.service) or self._load(obs.service)
                version = state.version
                state, found = scorer.apply(state, obs)
                if state.version != version:
                    self._touched.add(obs.service)
                for anomaly in found:
                    publish(topic, anomaly.service.encode(), encode(anomaly.to_avro()))
            except SchemaError as exc:
                self._dead_letter(message, InvalidEvent(f"undecodable Event: {exc}", "undecodable"))
            except InvalidEvent as exc:
                self._dead_letter(message, exc)
            except Exception as exc:  # a bug must not stall the partition: park the message
                log.exception("score failed on %s[%s]@%s", message.topic(), message.partition(),
                              message.offset())
                self._dead_letter(message, InvalidEvent(repr(exc), "internal_error"))
            where = (str(message.topic()), int(message.partition() or 0))
            self._offsets[where] = int(message.offset() or 0) + 1

    def _load(self, service: str) -> ServiceScore:
        """A state the batch prefetch did not cover (a message keyed other than by service)."""
        return self._restore(service, self._loop.run_until_complete(self.store.load(f"score:{service}")))

    def _restore(self, service: str, saved: dict[str, Any] | None) -> ServiceScore:
        state = self._states[service] = self.scorer.load(saved) if saved else self.scorer.new_state(service)
        return state

    def _dead_letter(self, message: Message, error: InvalidEvent) -> None:
        letter = DeadLetter(
            reason=error.reason, error_type=error.error_type, component=COMPONENT,
            payload=bytes(message.value() or b""), original_key=message.key(),
            topic=message.topic(), partition=message.partition(), offset=message.offset(),
        )
        log.warning("%s: dead-lettered %s[%s]@%s: %s", COMPONENT, message.topic(), message.partition(),
                    message.offset(), error.reason)
        self._publisher.publish(self.topics.dlq, message.key(), self._dlq_codec.encode(letter.to_avro()))

    def checkpoint(self) -> None:
        """Output acknowledged → touched states saved → offsets committed.  Blocks."""
        if not self._offsets:
            return
        self._publisher.flush()
        if self._touched:
            values = {f"score:{s}": self._states[s].to_json() for s in self._touched}
            self._loop.run_until_complete(self.store.save_many(values))
            self._touched.clear()
        offsets = [TopicPartition(t, p, o) for (t, p), o in self._offsets.items()]
        self._consumer.commit(offsets=offsets, asynchronous=False)
        self._offsets.clear()

    def _revoked(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        # Another worker may own these services next: finish our part, then forget every state.
        # A failing checkpoint raises out of consume(): the process exits and the partitions'
        # next owner replays from the last commit.
        self.checkpoint()
        self._states.clear()


def _key(message: Message) -> str:
    key = message.key()
    return key.decode("utf-8", "replace") if isinstance(key, bytes) else ""
