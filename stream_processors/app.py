"""``create_app(settings)``: the Faust app with the normalize and correlate agents; ``run_faust_worker``.

Nothing happens at import time; the app object exists only when built.  Each
agent is a thin loop around a pure step:

* **normalize** reads ``seismo.events.raw``, decodes the Avro Event, passes it
  through :class:`stream_processors.normalize.NormalizeStep` (secrets redacted,
  template mined per service; the miners live in the StateStore and are saved
  before an event that changed them is sent) and forwards the result to
  ``seismo.events.enriched`` (key = service, so order per service is kept);
* **correlate** reads ``seismo.events.enriched``, folds each event into the
  service's state (a :class:`~stream_processors.runtime.state.StateStore`, Redis in
  production) with :func:`stream_processors.correlate.apply`, and publishes
  changed incidents to the compacted ``seismo.incidents`` topic keyed by id;
* **score** reads ``seismo.events.enriched`` too, in its own consumer group and
  process: :mod:`stream_processors.score.adapter` (confluent-kafka batches; a
  Faust agent could not reach its throughput target).
  :func:`stream_processors.runtime.worker.run_worker` starts it
  beside the Faust app unless told to run one role only.

Delivery: an incident update is acknowledged by the broker *before* the state
that produced it is saved, and the state is saved before the input event is
acknowledged (so before its offset can be committed).  A crash therefore
replays events whose effect may already be in the state;
:func:`~stream_processors.correlate.apply` ignores those by event id, so
replays never create a second incident or duplicate evidence.

A message that cannot be decoded or processed goes to ``seismo.dlq`` with the
reason, and the agent goes on with the next one.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import faust
from pydantic import ValidationError

from schemas.codec import codec_for
from schemas.exceptions import SchemaError
from schemas.models import DeadLetter, Event
from seismo.settings import Settings
from seismo.topics import Topics
from stream_processors.correlate.logic import CorrelateConfig, ServiceState, apply
from stream_processors.exceptions import InvalidEvent
from stream_processors.normalize.durable import NormalizeStep
from stream_processors.normalize.mask_config import load_masker
from stream_processors.normalize.normalizer import Normalizer
from stream_processors.normalize.novelty import novelty_step
from stream_processors.runtime.state import MemoryStateStore, RedisStateStore, StateStore

log = logging.getLogger(__name__)
T = TypeVar("T")


def _decode_event(value: Any) -> Event:
    try:
        return Event.from_avro(codec_for("event").decode(value))
    except SchemaError as exc:
        raise InvalidEvent(f"undecodable Event: {exc}", "undecodable") from None
    except ValidationError as exc:
        raise InvalidEvent(f"Event fails validation: {exc.errors()[:3]}", "invalid_event") from None


def state_store(settings: Settings) -> StateStore:
    """The configured state backend of correlator and scorer (Redis unless ``state_backend`` is memory)."""
    if settings.state_backend == "memory":
        log.warning("correlator state is in memory: a restarted worker starts from scratch")
        return MemoryStateStore()
    return RedisStateStore(settings.redis, namespace=settings.app_id)


def create_app(settings: Settings, store: StateStore | None = None) -> faust.App:
    """Build the worker's Faust app from ``settings``; registers every agent explicitly."""
    topics = Topics.from_settings(settings)
    datadir = settings.state_dir / "worker" / settings.app_id
    datadir.parent.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.bootstrap}",
        store="memory://",  # no Faust tables: correlator state lives in a StateStore
        datadir=str(datadir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        topic_disable_leader=True,
        web_enabled=settings.worker_web_port is not None,
        web_port=settings.worker_web_port or 6066,
        web_host="127.0.0.1",
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        broker_commit_interval=1.0,
        # A killed worker's partitions move to a live one after this long (Kafka's default is 45 s).
        broker_session_timeout=settings.worker_session_timeout_s,
        broker_heartbeat_interval=max(1.0, settings.worker_session_timeout_s / 4),
        # Static membership: a restarted worker takes its partitions back at once instead of
        # waiting out the dead member's session (and going through two rebalances).
        consumer_group_instance_id=settings.worker_instance_id,
    )
    raw_kw: dict[str, Any] = {
        "key_type": bytes,
        "value_type": bytes,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }
    raw = app.topic(topics.raw, **raw_kw)
    enriched = app.topic(topics.enriched, **raw_kw)
    incidents = app.topic(topics.incidents, **raw_kw)
    dlq = app.topic(topics.dlq, **raw_kw)
    state = store if store is not None else state_store(settings)
    cfg = CorrelateConfig(
        window_s=settings.correlate_window_s,
        quiet_s=settings.resolve_quiet_s,
        max_evidence=settings.max_evidence,
    )
    event_codec, incident_codec = codec_for("event"), codec_for("incident")
    dlq_codec = codec_for("dead_letter")

    async def dead_letter(message: Any, component: str, error: InvalidEvent) -> None:
        letter = DeadLetter(
            reason=error.reason,
            error_type=error.error_type,
            component=component,
            payload=bytes(message.value or b""),
            original_key=message.key,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
        )
        log.warning(
            "%s: dead-lettered %s[%s]@%s: %s",
            component,
            message.topic,
            message.partition,
            message.offset,
            error.reason,
        )
        await dlq.send(key=message.key, value=dlq_codec.encode(letter.to_avro()))

    masker = load_masker(settings.mask_rules_file) if settings.mask_rules_file else None
    normalizer = Normalizer(masker=masker)
    step = NormalizeStep(normalizer, state)
    novelty = novelty_step(settings, normalizer)

    async def forget_templates(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        # Revoked services may be advanced by another worker: re-load them when next seen.
        step.forget_all()
        correlating.clear()
        if novelty is not None:
            novelty.forget_all()

    app.on_partitions_revoked.connect(forget_templates)

    async def guarded(message: Any, component: str, work: Callable[[], Awaitable[T]]) -> T | None:
        """Run ``work``; on failure dead-letter ``message`` and return None (the stream goes on)."""
        try:
            return await work()
        except InvalidEvent as exc:
            await dead_letter(message, component, exc)
        except Exception as exc:  # a bug must not stall the partition: park the message
            log.exception(
                "%s failed on %s[%s]@%s", component, message.topic, message.partition, message.offset
            )
            await dead_letter(message, component, InvalidEvent(repr(exc), "internal_error"))
        return None

    async def normalize_agent(stream: Any) -> None:
        async for event in stream.events():
            message = event.message

            async def work(value: Any = message.value) -> Event:
                out = (await step.process(_decode_event(value))).event
                return out if novelty is None else await novelty.score(out)

            normalized = await guarded(message, "normalize", work)
            if normalized is not None:
                await enriched.send(
                    key=normalized.service.encode(), value=event_codec.encode(normalized.to_avro())
                )

    correlating: dict[str, ServiceState] = {}  # decoded states of services seen since assignment

    async def correlate_one(value: Any) -> tuple[ServiceState, ServiceState, list[Any]]:
        ev = _decode_event(value)
        before = correlating.get(ev.service)
        if before is None:
            saved = await state.load(f"correlate:{ev.service}")
            before = ServiceState.from_json(saved) if saved else ServiceState(ev.service)
        after, outputs = apply(before, ev, cfg)
        correlating[ev.service] = after
        return before, after, outputs

    async def correlate_agent(stream: Any) -> None:
        async for event in stream.events():
            message = event.message

            async def work(value: Any = message.value) -> tuple[ServiceState, ServiceState, list[Any]]:
                return await correlate_one(value)

            result = await guarded(message, "correlate", work)
            if result is None:
                continue
            before, after, outputs = result
            for incident in outputs:
                fut = await incidents.send(
                    key=incident.id.encode(),
                    value=incident_codec.encode(incident.to_avro()),
                    force=True,
                )
                await fut  # acknowledged before the state that produced it is saved
            if after != before:
                await state.save(f"correlate:{after.service}", after.to_json())

    app.agent(raw, name="normalize")(normalize_agent)
    app.agent(enriched, name="correlate")(correlate_agent)
    return app


def run_faust_worker(settings: Settings) -> None:
    """Build the app and run it until SIGINT/SIGTERM (topics must exist).  Blocks."""
    app = create_app(settings)
    worker = faust.Worker(app, loglevel=settings.log_level.lower(), quiet=True)
    worker.execute_from_commandline()
