"""The score step on the shared runtime: ``seismo.events.enriched`` → ``seismo.anomalies``.

Each enriched record is decoded with the writer's schema and no logical types
straight into a slotted :class:`~stream_processors.score.observation.Observation`
(the normalizer validated every enriched event already; the few fields the scorer
relies on are checked, and a failing record is dead-lettered), folded into its
service's :class:`~stream_processors.score.scorer.ServiceScore` (StateStore key
``score:{service}``), and its anomalies are sent keyed by service.  The runtime saves
the states that changed at each checkpoint, after the anomalies were acknowledged.

Replays are harmless: the scorer ignores an event id it remembers, and anomalies of
replayed events carry the same deterministic ids (at-least-once).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from schemas.codec import codec_for
from seismo.settings import Settings
from seismo.topics import Topics
from stream_processors.runtime.records import decode_plain, key_text
from stream_processors.runtime.step import Output, Record
from stream_processors.score.observation import FIELDS, Observation
from stream_processors.score.scorer import ScoreConfig, Scorer, ServiceScore

_PREFIX = len("score:")


def score_config(settings: Settings) -> ScoreConfig:
    return ScoreConfig(
        window_s=settings.score_window_s,
        z_threshold=settings.score_z_threshold,
        novelty_threshold=settings.score_novelty_threshold,
        probation_windows=settings.score_probation_windows,
    )


class ScoreAdapter:
    """:class:`~stream_processors.runtime.step.Step` for score."""

    name = "score"

    def __init__(self, topics: Topics, scorer: Scorer) -> None:
        self.topics = topics
        self.scorer = scorer
        self._states: dict[str, ServiceScore] = {}
        self._touched: set[str] = set()
        self._encode = codec_for("anomaly").encode
        self._load: Callable[[str], dict[str, Any] | None] = lambda key: None

    @classmethod
    def from_settings(cls, settings: Settings) -> ScoreAdapter:
        return cls(Topics.from_settings(settings), Scorer(score_config(settings)))

    @property
    def inputs(self) -> list[str]:
        return [self.topics.enriched]

    def attach(self, load: Callable[[str], dict[str, Any] | None]) -> None:
        self._load = load

    def state_keys(self, records: list[Record]) -> Iterable[str]:
        return {f"score:{s}" for s in {key_text(r.key) for r in records} if s and s not in self._states}

    def restore(self, saved: dict[str, dict[str, Any]], wanted: set[str]) -> None:
        for key in wanted:
            self._restore(key[_PREFIX:], saved.get(key))

    def _restore(self, service: str, saved: dict[str, Any] | None) -> ServiceScore:
        state = self._states[service] = (
            self.scorer.load(saved, service=service) if saved else self.scorer.new_state(service)
        )
        return state

    def handle(self, record: Record, out: Output) -> None:
        obs = Observation.from_record(decode_plain(record.value, fields=FIELDS))
        state = self._states.get(obs.service)
        if state is None:  # a record keyed other than by its service
            state = self._restore(obs.service, self._load(f"score:{obs.service}"))
        version = state.version
        state, found = self.scorer.apply(state, obs)
        if state.version != version:
            self._touched.add(obs.service)
        topic, encode = self.topics.anomalies, self._encode
        for anomaly in found:
            out.emit(topic, anomaly.service.encode(), encode(anomaly.to_avro()))
        out.saw_event_time(obs.ts_us)

    def end_batch(self, out: Output) -> None:
        return None

    def dirty_states(self) -> dict[str, dict[str, Any]]:
        values = {f"score:{s}": self._states[s].to_json() for s in self._touched if s in self._states}
        self._touched.clear()
        return values

    def revoked(self) -> None:
        self._states.clear()
        self._touched.clear()
