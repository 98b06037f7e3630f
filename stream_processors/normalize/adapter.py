"""The normalize step on the shared runtime: ``seismo.events.raw`` → ``seismo.events.enriched``.

Each raw record is decoded and validated (an undecodable or invalid one is
dead-lettered), redacted and templated by its service's miner
(:class:`~stream_processors.normalize.durable.DurableTemplates`), given a template
novelty when embeddings are on (:mod:`stream_processors.normalize.novelty`), and sent
to the enriched topic keyed by service, so each service's order is kept.  Miners are
StateStore values ``normalize:{service}``, saved at the runtime's checkpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from schemas.codec import HEADER_LEN, codec_for, load_schema
from seismo.settings import Settings
from seismo.topics import Topics
from stream_processors.embed.exceptions import EmbedError
from stream_processors.exceptions import InvalidEvent
from stream_processors.normalize import splice
from stream_processors.normalize.durable import DurableTemplates, state_key
from stream_processors.normalize.mask_config import load_masker
from stream_processors.normalize.normalizer import Normalizer
from stream_processors.normalize.novelty import NoveltyStep, novelty_step
from stream_processors.runtime.metrics import series
from stream_processors.runtime.records import decode_event_record, key_text
from stream_processors.runtime.step import MAX_OUTPUT_BYTES, Output, Record

log = logging.getLogger(__name__)
_PREFIX = len("normalize:")
_REDACTION_GROWTH = 24  # a <SECRET:kind> placeholder is at most 23 characters, a secret at least 1
_TAIL_BYTES = 64  # the template id (13 characters) and the unions' branch and length bytes, with room
_NOVELTY_BYTES = 8  # what the novelty, set at the batch's end, adds to an encoded event


class NormalizeAdapter:
    """:class:`~stream_processors.runtime.step.Step` for normalize."""

    name = "normalize"

    def __init__(self, topics: Topics, templates: DurableTemplates, novelty: NoveltyStep | None) -> None:
        self.topics = topics
        self.templates = templates
        self.novelty = novelty
        codec = codec_for("event")
        self._encode = codec.encode_plain
        self._fingerprint = codec.fingerprint
        self._splice = splice.fits(load_schema("event"))
        self._raws: list[bytes | None] = []  # per batched event: its raw bytes when they can be spliced
        self._load: Callable[[str], dict[str, Any] | None] = lambda key: None
        self._batch: list[dict[str, Any]] = []
        self._stats = novelty.cache.stats() if novelty is not None else None

    @classmethod
    def from_settings(cls, settings: Settings) -> NormalizeAdapter:
        masker = load_masker(settings.mask_rules_file) if settings.mask_rules_file else None
        normalizer = Normalizer(masker=masker)
        templates = DurableTemplates(normalizer)
        return cls(Topics.from_settings(settings), templates, novelty_step(settings, normalizer))

    @property
    def inputs(self) -> list[str]:
        return [self.topics.raw]

    def attach(self, load: Callable[[str], dict[str, Any] | None]) -> None:
        self._load = load

    def state_keys(self, records: list[Record]) -> Iterable[str]:
        loaded = self.templates.loaded
        return {state_key(s) for s in {key_text(r.key) for r in records} if s and not loaded(s)}

    def restore(self, saved: dict[str, dict[str, Any]], wanted: set[str]) -> None:
        for key in wanted:
            self._restore(key[_PREFIX:], saved.get(key))

    def _restore(self, service: str, value: dict[str, Any] | None) -> None:
        self.templates.restore(service, value)
        if self.novelty is not None:
            self.novelty.restored(service)

    def handle(self, record: Record, out: Output) -> None:
        """Decode and template now; novelty and the send wait for :meth:`end_batch`.

        The event stays its Avro record (validated as :class:`~schemas.models.Event` would
        be, see :func:`decode_event_record`), changed in place and encoded again."""
        value = record.value
        event = decode_event_record(value)
        service = event["service"]
        if not self.templates.loaded(service):  # keyed other than by its service
            self._restore(service, self._load(state_key(service)))
        message, attributes = event["message"], event["attributes"]
        spliceable = (
            self._splice and value[2:HEADER_LEN] == self._fingerprint and value.endswith(splice.NULLS)
            and event["template_id"] is None and event["template"] is None and event["novelty"] is None
        )
        self.templates.process_record(event)
        unchanged = event["message"] is message and event["attributes"] is attributes
        self._check_size(value, event, unchanged)
        self._batch.append(event)
        self._raws.append(value if spliceable and unchanged else None)
        out.saw_event_time(event["timestamp"])

    def _check_size(self, value: bytes, event: dict[str, Any], unchanged: bool) -> None:
        """Raise ``too_large`` when the enriched event would not fit a record: it holds the
        message twice, as itself and as its template.  A cheap bound passes nearly every event
        (a template is at most 4 UTF-8 bytes a character; redaction, when it changed the event,
        at most ~24 times what it replaced: the longest placeholder is 23 characters); the rest
        are encoded and measured."""
        template = event["template"] or ""
        growth = 1 if unchanged else _REDACTION_GROWTH
        if growth * len(value) + 4 * len(template) + _TAIL_BYTES <= MAX_OUTPUT_BYTES:
            return
        size = len(self._encode(event)) + _NOVELTY_BYTES
        if size > MAX_OUTPUT_BYTES:
            raise InvalidEvent(f"its enriched event would be {size} bytes (the message and its template), "
                               f"over the {MAX_OUTPUT_BYTES}-byte limit of a record", "too_large")

    def end_batch(self, out: Output) -> None:
        """Novelty for the whole batch (new templates embedded in one engine call), then send."""
        batch, self._batch = self._batch, []
        raws, self._raws = self._raws, []
        novelty = self.novelty
        if novelty is not None and batch:
            try:
                novelty.prepare(batch)
            except EmbedError as exc:
                log.error("normalize: template embeddings failed (%s); this batch goes without novelty", exc)
                novelty = None
        topic, encode = self.topics.enriched, self._encode
        tail = splice.tail
        for event, raw in zip(batch, raws, strict=True):
            if novelty is not None:
                value = novelty.value(event)
                if value is not None:
                    event["novelty"] = value
            if raw is None:
                data = encode(event)
            else:  # the raw bytes, their null tail replaced: what encode(event) gives, for less
                data = raw[:-3] + tail(event["template_id"], event["template"], event["novelty"])
            out.emit(topic, event["service"].encode(), data)
        self._count_embedder()

    def _count_embedder(self) -> None:
        if self.novelty is None or self._stats is None:
            return
        now, before = self.novelty.cache.stats(), self._stats
        m = series()
        if now.inner_calls > before.inner_calls:
            m.embedder_calls.labels(self.name).inc(now.inner_calls - before.inner_calls)
        if now.hits_lru > before.hits_lru:
            m.embedder_hits.labels(self.name, "lru").inc(now.hits_lru - before.hits_lru)
        if now.hits_redis > before.hits_redis:
            m.embedder_hits.labels(self.name, "redis").inc(now.hits_redis - before.hits_redis)
        self._stats = now

    def dirty_states(self) -> dict[str, dict[str, Any]]:
        return self.templates.dirty_states()

    def revoked(self) -> None:
        self._batch.clear()
        self._raws.clear()
        self.templates.forget_all()
        if self.novelty is not None:
            self.novelty.forget_all()
