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

from schemas.codec import codec_for
from seismo.settings import Settings
from seismo.topics import Topics
from stream_processors.normalize.durable import DurableTemplates, state_key
from stream_processors.normalize.mask_config import load_masker
from stream_processors.normalize.normalizer import Normalizer
from stream_processors.normalize.novelty import NoveltyStep, novelty_step
from stream_processors.runtime.records import decode_event, key_text
from stream_processors.runtime.step import Output, Record

log = logging.getLogger(__name__)
_PREFIX = len("normalize:")


class NormalizeAdapter:
    """:class:`~stream_processors.runtime.step.Step` for normalize."""

    name = "normalize"

    def __init__(self, topics: Topics, templates: DurableTemplates, novelty: NoveltyStep | None) -> None:
        self.topics = topics
        self.templates = templates
        self.novelty = novelty
        self._encode = codec_for("event").encode
        self._load: Callable[[str], dict[str, Any] | None] = lambda key: None

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
            self.templates.restore(key[_PREFIX:], saved.get(key))

    def handle(self, record: Record, out: Output) -> None:
        event = decode_event(record.value)
        if not self.templates.loaded(event.service):  # keyed other than by its service
            self.templates.restore(event.service, self._load(state_key(event.service)))
        enriched = self.templates.process(event).event
        if self.novelty is not None:
            enriched = self.novelty.score_blocking(enriched)
        out.emit(self.topics.enriched, enriched.service.encode(), self._encode(enriched.to_avro()))
        out.saw_event_time(int(event.timestamp.timestamp() * 1_000_000))

    def end_batch(self, out: Output) -> None:
        return None

    def dirty_states(self) -> dict[str, dict[str, Any]]:
        return self.templates.dirty_states()

    def revoked(self) -> None:
        self.templates.forget_all()
        if self.novelty is not None:
            self.novelty.forget_all()
