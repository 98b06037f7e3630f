"""The one stream runtime: batched consume → the step → produce → checkpoint, on confluent-kafka.

Every step (normalize, correlate, score) runs on :class:`StepRuntime`; the step
itself is a :class:`~stream_processors.runtime.step.Step` adapter around a pure
module.  Why a hand-written loop and not Faust, arroyo or quixstreams: see
docs/decisions.md ("One stream runtime").

The loop (:meth:`StepRuntime.run` blocks until :meth:`StepRuntime.stop`):

1. ``consume`` up to ``batch_size`` messages of the step's input topics (batched in C);
2. load the states the batch needs and this process does not hold, in one round trip;
3. hand each message to the step; a message the step rejects
   (:class:`~stream_processors.exceptions.InvalidEvent`) or fails on, or one larger than
   :data:`MAX_RECORD_BYTES` (never handed to the step), goes to ``seismo.dlq`` with the
   reason, and the batch goes on;
4. send what the step produced (idempotent producer, ``acks=all``);
5. **checkpoint** every ``checkpoint_s`` under a backlog, at once when a fetch comes
   back short (caught up), on revocation and on stop: every output acknowledged by
   the broker → the states the step changed saved in one round trip → the offsets
   after the last processed message committed.

While the broker is away the loop waits for it rather than exit: a checkpoint waits as long as
it takes for its outputs to be acknowledged (their delivery never times out); a commit the
coordinator cannot take yet stays pending for the next checkpoint (the loop goes on polling, so
a rebalance can complete); a commit the group refuses (its generation moved on while the broker
was away) is dropped, and the partitions' next owner replays from the last commit.  Only a stop
bounds the wait (``stop_flush_s``; its commit asks the coordinator for 2 s first: a commit waits
out an absent one for the session timeout).  A step that fails because a dependency is away
(``KafkaException`` or a ``RecoverableError`` out of :meth:`Step.handle`) has not met a poison
message: the runtime rewinds its partitions to the last checkpoint, forgets its states and, a
second later, processes the records again.

A crash replays at most the messages after the last commit, against the states of the last
checkpoint; the steps are deterministic per key and ignore event ids they remember, so a replay
produces the same outputs (at-least-once, idempotent effects).  On revocation the runtime
checkpoints, then the step forgets its states.  Each step is one consumer group.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from producers.exceptions import DeliveryFailed, PublishError
from producers.exceptions import RecoverableError as PublishRecoverable
from producers.publisher import KafkaPublisher
from seismo.logs import fields, kafka_logging
from seismo.settings import Settings
from seismo.topics import Topics
from stream_processors.exceptions import InvalidEvent, RecoverableError
from stream_processors.runtime.commit import Committer
from stream_processors.runtime.deadletter import park, where
from stream_processors.runtime.fence import ReplayFence
from stream_processors.runtime.metrics import refresh_lag, series
from stream_processors.runtime.state import StateStore, StateUnavailable
from stream_processors.runtime.step import Output, Record, Step

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_RECORD_BYTES = 512 * 1024
"""An input larger than this is dead-lettered unread (``too_large``): its outputs would not fit the
producer's 1 MB limit, and a send that cannot succeed would stop the partition (normalize also checks
its own output, which holds the message twice: :data:`~stream_processors.runtime.step.MAX_OUTPUT_BYTES`)."""
_FIRST_BATCH = 100  # records in the first batch a runtime takes; doubled each batch up to batch_size
# Commit errors that mean "the coordinator is not reachable yet": retried until it is, or until stop.
_COORDINATOR_AWAY = frozenset({
    KafkaError._WAIT_COORD, KafkaError._TRANSPORT, KafkaError._TIMED_OUT, KafkaError._ALL_BROKERS_DOWN,
    KafkaError.REQUEST_TIMED_OUT, KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.NETWORK_EXCEPTION,
})


class _DependencyDown(Exception):
    """A step's handle failed on something that is away, not on its record: rewind and retry."""


class StepRuntime:
    """One consumer of one step.  Not thread-safe, except :meth:`stop`."""

    def __init__(
        self, settings: Settings, step: Step, store: StateStore, *, instance: int = 0,
        batch_size: int | None = None, checkpoint_s: float | None = None,
    ) -> None:
        self.step = step
        self.store = store
        self.topics = Topics.from_settings(settings)
        self.batch_size = batch_size or settings.worker_batch_size
        self.checkpoint_s = checkpoint_s or settings.worker_checkpoint_s
        self.group_id = settings.group_id(step.name)
        conf: dict[str, Any] = {
            "bootstrap.servers": settings.bootstrap,
            "group.id": self.group_id,
            "client.id": f"{self.group_id}-{instance}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": int(settings.worker_session_timeout_s * 1000),
            "fetch.wait.max.ms": 100,
            "log_level": 3,
        }
        if settings.worker_instance_id:  # static membership: one id per consumer of the group
            conf["group.instance.id"] = f"{settings.worker_instance_id}-{step.name}-{instance}"
        self._consumer = Consumer(kafka_logging(conf))
        self._stop = threading.Event()
        self._committer = Committer(self._stop.is_set)  # a stop walks away from a commit stuck in librdkafka
        self._publisher = KafkaPublisher(  # a broker outage is waited out (no delivery timeout), a stop not
            settings.bootstrap, client_id=f"{self.group_id}-{instance}", interrupted=self._stop.is_set,
            **kafka_logging(), **{"message.timeout.ms": 0},
        )
        self._loop = asyncio.new_event_loop()
        self._offsets: dict[tuple[str, int], int] = {}
        self._first: dict[tuple[str, int], int] = {}  # first offset processed since the last commit
        self._fences = ReplayFence(self.group_id, step.name)  # records the saved states already hold
        self._commit_warned, self._newest_event_us, self.stop_flush_s = 0.0, 0, 10.0
        self._metrics, self._label = series(), step.name
        step.attach(lambda key: self._store_call("load", lambda: self.store.load(key)))

    # -- control -----------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask :meth:`run` to checkpoint and return.  Thread-safe, never blocks."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def abandoned(self) -> bool:  # the stop left a commit in librdkafka (:mod:`.commit`): leave at once
        return self._committer.stuck

    def run(self) -> None:
        """Consume until :meth:`stop`; checkpoint on the way out.  Raises PublishError when the
        broker refuses output (nothing after the last checkpoint is committed).

        Stopping never waits on a dead dependency for long: a final checkpoint that cannot reach the
        broker (``stop_flush_s``; a commit: :mod:`.commit`) or the state store (which gives up once
        told to stop) is abandoned with a warning; the partitions replay from the last commit.
        """
        self._consumer.subscribe(self.step.inputs, on_revoke=self._revoked, on_lost=self._lost)
        last, batches = time.monotonic(), 0
        try:
            while not self._stop.is_set():
                # The first batches ramp up (100, 200, 400, ...): the steps after this one start on
                # its first outputs while it is still warming up (models, new templates).
                size = min(self.batch_size, _FIRST_BATCH << min(batches, 16))
                messages = self._consumer.consume(size, timeout=0.2)
                if messages:
                    batches += 1
                    try:
                        self.process(messages)
                    except _DependencyDown as exc:
                        self._rewind(exc)
                        continue
                # A short batch means the fetch waited out its timeout: caught up, so checkpoint now
                # (commits stay fresh when traffic is light; a backlog checkpoints per interval).
                caught_up = len(messages) < size
                if self._offsets and (caught_up or time.monotonic() - last >= self.checkpoint_s):
                    self.checkpoint()
                    last = time.monotonic()
            self._final_checkpoint()
        except StateUnavailable as exc:
            if not self._stop.is_set():
                raise
            log.warning("%s: stopped without saving state (%s); the partitions replay from the last "
                        "commit", self._label, exc, extra=fields(step=self._label))
        except (PublishError, KafkaException) as exc:  # a checkpoint the stop cut short
            if not self._stop.is_set():
                raise
            log.warning("%s: stopped without a last checkpoint (%s); the partitions replay from the "
                        "last commit", self._label, exc, extra=fields(step=self._label))
        finally:
            # What the last checkpoint did not commit stays uncommitted: closing revokes the
            # partitions, and a checkpoint there would commit past a save or a delivery that failed.
            self._drop_uncommitted()
            if not self.abandoned:  # closing would wait for the stuck commit too
                self._consumer.close()
            self._loop.run_until_complete(self._close_store())
            self._loop.close()

    def _final_checkpoint(self) -> None:
        try:
            self.checkpoint(flush_s=self.stop_flush_s)
        except (PublishError, KafkaException) as exc:
            what = "a last checkpoint" if isinstance(exc, PublishError) else "committing on the way out"
            log.warning("%s: stopped without %s (%s); the partitions replay from the last commit",
                        self._label, what, exc, extra=fields(step=self._label))

    # -- one batch ---------------------------------------------------------------------------
    def process(self, messages: list[Message]) -> None:
        """Run one batch through the step and queue its outputs (sent, not yet acknowledged)."""
        started = time.perf_counter()
        records: list[Record] = []
        for message in messages:
            err = message.error()
            if err is not None:
                if err.fatal():
                    raise KafkaException(err)
                log.warning("consume error: %s", err.str(), extra=fields(step=self._label))
                continue
            records.append(Record(
                str(message.topic()), int(message.partition() or 0), int(message.offset() or 0),
                message.key(), message.value() or b"", int(message.timestamp()[1]),
            ))
        for record in records:  # where a rewind goes back to (records come in offset order)
            self._first.setdefault((record.topic, record.partition), record.offset)
        records = self._past_fences(records)
        self._load_states(records)
        out = Output()
        step, handle = self.step, self.step.handle
        for record in records:
            try:
                if len(record.value) > MAX_RECORD_BYTES:
                    raise InvalidEvent(f"a record of {len(record.value)} bytes is over the "
                                       f"{MAX_RECORD_BYTES}-byte limit of the stream steps", "too_large")
                handle(record, out)
            except InvalidEvent as exc:
                self._dead_letter(record, exc, out)
            except (KafkaException, RecoverableError, PublishRecoverable) as exc:  # not the record's fault
                raise _DependencyDown(f"{record.topic}[{record.partition}]@{record.offset}: {exc!r}") from exc
            except Exception as exc:  # a bug must not stall the partition: park the message
                log.exception(
                    "%s failed on %s[%s]@%s", self._label, record.topic, record.partition, record.offset,
                    extra=where(record, self._label),
                )
                self._dead_letter(record, InvalidEvent(repr(exc), "internal_error"), out)
            self._offsets[(record.topic, record.partition)] = record.offset + 1
        step.end_batch(out)
        self._publisher.publish_many(out.records)
        counts: dict[str, int] = {}
        for topic, _, _ in out.records:
            counts[topic] = counts.get(topic, 0) + 1
        m = self._metrics
        m.events_in.labels(self._label).inc(len(records))
        for topic, n in counts.items():
            m.events_out.labels(self._label, topic).inc(n)
        if out.newest_event_us > self._newest_event_us:
            self._newest_event_us = out.newest_event_us
        if self._newest_event_us:
            m.event_time_lag.labels(self._label).set(time.time() - self._newest_event_us / 1e6)
        m.batch_seconds.labels(self._label).observe(time.perf_counter() - started)

    def _past_fences(self, records: list[Record]) -> list[Record]:
        """``records`` without those the saved states already hold (their outputs were
        acknowledged); the skipped ones still move the offsets to commit (:mod:`.fence`)."""
        new = self._fences.unknown(records)
        if new:
            committed = self._committed_offsets([TopicPartition(t, p) for t, p in new])
            keys = sorted(self._fences.key(t, p) for t, p in new)
            self._fences.learn(committed, self._store_call("load_many", lambda: self.store.load_many(keys)))
        kept = self._fences.past(records, self._offsets)
        if len(kept) < len(records):
            self._metrics.replay_skipped.labels(self._label).inc(len(records) - len(kept))
        return kept

    def _committed_offsets(self, asked: list[TopicPartition]) -> list[TopicPartition]:
        deadline = time.monotonic() + 10.0
        while True:  # 1 s at a time, so a stop is never held up by a broker that is away
            try:
                return list(self._consumer.committed(asked, timeout=1.0))
            except KafkaException as exc:
                if self._stop.is_set() or time.monotonic() >= deadline:
                    raise _DependencyDown(f"reading the committed offsets: {exc!r}") from exc

    def _load_states(self, records: list[Record]) -> None:
        wanted = set(self.step.state_keys(records))
        if not wanted:
            return
        saved = self._store_call("load_many", lambda: self.store.load_many(sorted(wanted)))
        self.step.restore(saved, wanted)

    def _dead_letter(self, record: Record, error: InvalidEvent, out: Output) -> None:
        park(record, error, self._label, self.topics.dlq, out)

    # -- checkpoint ---------------------------------------------------------------------------
    def checkpoint(self, flush_s: float | None = None) -> None:
        """Outputs acknowledged → changed states saved → offsets committed.  Blocks: while the broker is
        away it waits for it, until :meth:`stop`; from then on (or with ``flush_s``) it waits at most
        ``flush_s`` (default ``stop_flush_s``) for the acknowledgements and raises PublishError
        (nothing saved or committed then).  A commit the group refuses (rebalanced meanwhile) is
        dropped with a warning: the partitions' next owner replays from the last commit."""
        if not self._offsets:
            return
        started = time.perf_counter()
        self._flush(flush_s)
        dirty = dict(self.step.dirty_states())
        if dirty:  # no state changed: nothing a replay could apply twice, and no Redis round trip
            dirty.update(self._fences.entries(self._offsets))  # fences, in the same write
            self._store_call("save_many", lambda: self.store.save_many(dirty))
        offsets = [TopicPartition(t, p, o) for (t, p), o in self._offsets.items()]
        if not self._commit(offsets):
            return  # pending: the next checkpoint commits these offsets (or later ones)
        self._fences.committed_to(offsets)
        self._drop_uncommitted()
        self._metrics.checkpoint_seconds.labels(self._label).observe(time.perf_counter() - started)
        refresh_lag(self._consumer, offsets, self._label)

    def _flush(self, flush_s: float | None) -> None:
        """Wait for every output's acknowledgement, in 1 s slices: unbounded while running, at most
        ``flush_s`` (``stop_flush_s`` once stopping) otherwise; raises PublishError past that or when
        a delivery failed."""
        waited, bounded = 0.0, flush_s is not None
        while True:
            if not bounded and self._stop.is_set():
                waited, bounded = 0.0, True  # the stop gets its own stop_flush_s
            limit = flush_s if flush_s is not None else self.stop_flush_s
            slice_s = min(1.0, limit - waited) if bounded else 1.0
            try:
                self._publisher.flush(max(slice_s, 0.0))
                return
            except DeliveryFailed:
                raise  # refused messages are gone from the queue: waiting acknowledges nothing
            except PublishError as exc:
                waited += slice_s
                if bounded and waited >= limit:
                    raise PublishError(f"outputs not acknowledged within {limit:.0f}s") from exc
                if not bounded and waited % 30 < 1.0:
                    log.warning("%s: the broker has not acknowledged the outputs for %.0f s; waiting for it",
                                self._label, waited, extra=fields(step=self._label))

    def _commit(self, offsets: list[TopicPartition]) -> bool:
        """Commit ``offsets``: True when done; False while the coordinator is away (the offsets are
        kept for the next checkpoint) or when the group refused them (dropped, with a warning: the
        partitions' next owner resumes from the last commit).  Once stopping, any failure raises."""
        try:
            if self._stop.is_set():  # see the module's docstring
                self._consumer.committed([TopicPartition(offsets[0].topic, offsets[0].partition)], 2.0)
            self._committer.commit(self._consumer, offsets)
            return True
        except KafkaException as exc:
            err = exc.args[0]
            if self._stop.is_set() or not isinstance(err, KafkaError):
                raise
            if err.code() in _COORDINATOR_AWAY:
                if time.monotonic() - self._commit_warned > 30:
                    self._commit_warned = time.monotonic()
                    log.warning("%s: the group coordinator is away (%s); the commit waits for the next "
                                "checkpoint", self._label, err.str(), extra=fields(step=self._label))
                return False
            log.warning("%s: the group refused the commit (%s); the partitions' next owner resumes "
                        "from the last commit, past what the saved states hold", self._label, err.str(),
                        extra=fields(step=self._label))
            self._drop_uncommitted()
            return False

    def _rewind(self, exc: _DependencyDown) -> None:
        """Back to the last checkpoint: forget the step's states and what was processed since, seek
        each partition to the first record after the last commit, and pause a second."""
        log.warning("%s: a dependency failed (%s); rewinding to the last checkpoint to process again",
                    self._label, exc, extra=fields(step=self._label))
        for (topic, partition), offset in self._first.items():
            try:
                self._consumer.seek(TopicPartition(topic, partition, offset))
            except KafkaException:  # no longer ours: its next owner replays from the last commit
                continue
        self._forget()
        self._stop.wait(1.0)

    def _drop_uncommitted(self) -> None:
        """Forget what was processed since the last commit (committed, or left to a replay)."""
        self._offsets.clear()
        self._first.clear()

    def _forget(self) -> None:
        """Forget everything about the partitions: uncommitted work, fences, the step's states."""
        self._drop_uncommitted()
        self._fences.clear()
        self.step.revoked()

    def _store_call(self, op: str, call: Callable[[], Coroutine[Any, Any, T]]) -> T:
        started = time.perf_counter()
        try:
            return self._loop.run_until_complete(call())
        except Exception:
            self._metrics.store_errors.labels(self._label, op).inc()
            raise
        finally:
            self._metrics.store_seconds.labels(self._label, op).observe(time.perf_counter() - started)

    def _revoked(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        # Another worker may own these keys next: finish our part, then forget every state.
        # A failing checkpoint raises out of consume(): the process exits and the partitions'
        # next owner replays from the last commit.
        self.checkpoint()
        self._forget()  # a commit left pending is the next owner's to redo

    def _lost(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        # The group moved on without us (session expired): our uncommitted work is someone
        # else's to redo; committing now would fail.  Drop it and start clean.
        log.warning("%s: partitions lost; dropping uncommitted work", self._label)
        self._forget()

    async def _close_store(self) -> None:
        close = getattr(self.store, "close", None)
        if close is not None:
            await close()
