"""The correlate step on the shared runtime: enriched events and anomalies → ``seismo.incidents``.

Two stages in one step (one consumer group), joined by the internal one-partition
``seismo.signals`` topic (why: docs/decisions.md, "Cross-service correlation"):

1. **per partition** — an enriched record becomes at most one compact signal
   (:func:`~.signals.from_event`), ordered by its partition's clock
   (:class:`~.align.PartitionClock`, state ``correlate:clock:{partition}``); an anomaly
   record becomes an anomaly signal.  Signals go to ``seismo.signals`` (JSON, key
   ``signals``); at the end of the batch each touched partition's watermark follows as a
   mark.
2. **global** — the consumer of ``seismo.signals`` (one partition, so one worker at a
   time) aligns the partitions (:class:`~.align.Aligner`) and feeds the released signals,
   in event-time order, to the :class:`~.correlator.Correlator` (state ``correlate:global``).
   Incidents it changed are built and sent at the end of the batch (latest revision only,
   keyed by id, to the compacted topic).

The runtime sends every output, then saves the changed states, then commits offsets: a
crash replays signals whose effect may be saved; the correlator ignores their ids.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from schemas.codec import codec_for
from schemas.exceptions import SchemaError
from seismo.settings import Settings
from seismo.topics import Topics
from stream_processors.correlate.align import Aligner, PartitionClock
from stream_processors.correlate.correlator import Correlator, CorrelatorConfig
from stream_processors.correlate.llm import LlmConfig, LlmLabeler
from stream_processors.correlate.outcomes import Outcomes
from stream_processors.correlate.probe import KafkaProbe, PartitionProbe
from stream_processors.correlate.publish import build
from stream_processors.correlate.semantic import TemplateSigner
from stream_processors.correlate.signals import Signal, SignalKind, from_anomaly, from_event, may_signal
from stream_processors.exceptions import InvalidEvent
from stream_processors.runtime.records import decode_plain
from stream_processors.runtime.step import Output, Record

GLOBAL = "correlate:global"
SIGNAL_KEY = b"signals"
_US = 1_000_000
_HEAD = ("kind", "severity", "timestamp")  # what decides whether an event may be a signal
PROBE_EVERY_S = 2.0
MAX_TICKS = 300  # about a minute of asking whether normalize finished a partition
# the kinds whose templates the normalize step embeds (so the shared cache already holds them); a
# span's or a metric's "template" is a name, not a sentence
SIGNED_KINDS = frozenset({"log", "event", "error", "alert"})


def clock_key(partition: int) -> str:
    return f"correlate:clock:{partition}"


class CorrelateAdapter:
    """:class:`~stream_processors.runtime.step.Step` for correlate."""

    name = "correlate"

    def __init__(self, topics: Topics, cfg: CorrelatorConfig, probe: PartitionProbe, lateness_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic, labeler: LlmLabeler | None = None,
                 min_lateness_s: float | None = None, signer: TemplateSigner | None = None) -> None:
        """``lateness_s`` is the most a partition's signals wait for its stragglers, ``min_lateness_s``
        the least (default: the same, a fixed lateness); in between, each partition waits as long as
        its own disorder asks (:mod:`~.align`)."""
        self.topics, self.cfg, self.probe, self.labeler = topics, cfg, probe, labeler
        self.signer = signer  # None: symptoms carry no template signature (no semantic links)
        self.lateness_us = int(lateness_s * _US)
        self.min_lateness_us = self.lateness_us if min_lateness_s is None else int(min_lateness_s * _US)
        self._clocks: dict[int, PartitionClock] = {}
        self._touched: set[int] = set()
        self._next_offset: dict[int, int] = {}
        self._waiting = False
        self._ticks = 0
        self._dirty: set[str] = set()
        self._aligner: Aligner | None = None
        self._corr: Correlator | None = None
        self._outcomes: Outcomes | None = None
        self._pending: set[str] = set()
        self._absent: set[int] = set()
        self._probed_at = -1e18
        self._now = clock
        self._encode = codec_for("incident").encode
        self._decode_anomaly = codec_for("anomaly").decode_plain
        self._decode_feedback = codec_for("feedback").decode_plain
        self._load: Callable[[str], dict[str, Any] | None] = lambda key: None

    @classmethod
    def from_settings(cls, settings: Settings) -> CorrelateAdapter:
        cfg = CorrelatorConfig(
            window_s=settings.correlate_window_s, quiet_s=settings.resolve_quiet_s,
            lookback_s=settings.correlate_lookback_s, max_evidence=settings.max_evidence,
            open_alpha=settings.correlate_open_alpha, reopen_grace_s=settings.correlate_reopen_grace_s,
        )
        topics = Topics.from_settings(settings)
        probe = KafkaProbe(settings.bootstrap, topics.enriched, topics.raw, settings.group_id("normalize"))
        labeler = None
        if settings.llm_url:
            key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
            labeler = LlmLabeler(LlmConfig(settings.llm_url, settings.llm_model, key, settings.llm_timeout_s))
        signer = None
        if settings.embedder != "off":
            from stream_processors.embed.engine import configured_cache

            signer = TemplateSigner(lambda: configured_cache(settings))
        return cls(topics, cfg, probe, settings.correlate_lateness_s, labeler=labeler,
                   min_lateness_s=settings.correlate_min_lateness_s, signer=signer)

    @property
    def inputs(self) -> list[str]:
        return [self.topics.enriched, self.topics.anomalies, self.topics.signals, self.topics.feedback]

    def attach(self, load: Callable[[str], dict[str, Any] | None]) -> None:
        self._load = load

    def state_keys(self, records: list[Record]) -> Iterable[str]:
        keys = set()
        for r in records:
            if r.topic == self.topics.enriched and r.partition not in self._clocks:
                keys.add(clock_key(r.partition))
            elif r.topic == self.topics.signals and self._corr is None:
                keys.add(GLOBAL)
        return keys

    def restore(self, saved: dict[str, dict[str, Any]], wanted: set[str]) -> None:
        for key in wanted:
            self._restore(key, saved.get(key))

    def _restore(self, key: str, value: dict[str, Any] | None) -> None:
        if key == GLOBAL:
            value = value or {}
            self._aligner = Aligner.from_json(value.get("align", {}), self.lateness_us)
            self._corr = Correlator.from_json(value.get("corr", {}), self.cfg)
            self._outcomes = Outcomes.from_json(value.get("out", {}))
        else:
            self._clocks[int(key.rsplit(":", 1)[1])] = PartitionClock.from_json(value or {})

    # -- records ---------------------------------------------------------------------------------
    def handle(self, record: Record, out: Output) -> None:
        if record.topic == self.topics.enriched:
            self._event(record, out)
        elif record.topic == self.topics.anomalies:
            self._anomaly(record, out)
        elif record.topic == self.topics.feedback:
            self._feedback(record, out)
        else:
            self._signal(record)

    def _event(self, record: Record, out: Output) -> None:
        head = decode_plain(record.value, fields=_HEAD)  # an info log or metric needs no more
        try:
            ts_us = int(head["timestamp"])
            maybe = may_signal(head["kind"], head["severity"])
            sig = from_event(decode_plain(record.value)) if maybe else None
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidEvent(f"Event lacks a usable field: {exc!r}", "invalid_event") from None
        clock = self._clocks.get(record.partition)
        if clock is None:
            self._restore(clock_key(record.partition), self._load(clock_key(record.partition)))
            clock = self._clocks[record.partition]
        if sig is None:
            clock.observe(ts_us, self.lateness_us, self.min_lateness_us)
        else:
            order = clock.order_key(ts_us, self.lateness_us, self.min_lateness_us)
            if self.signer is not None and sig.kind is SignalKind.SYMPTOM and sig.template_id \
                    and sig.event_kind in SIGNED_KINDS:
                shape = self.signer.sign(sig.template_id, sig.extra.get("template", sig.summary))
                if shape:
                    sig = replace(sig, extra={**sig.extra, "shape": shape})
            out.emit(self.topics.signals, SIGNAL_KEY,
                     json.dumps({"o": order, "s": sig.to_json()}, separators=(",", ":")).encode())
        self._touched.add(record.partition)
        self._next_offset[record.partition] = record.offset + 1
        out.saw_event_time(ts_us)

    def _anomaly(self, record: Record, out: Output) -> None:
        try:
            sig = from_anomaly(self._decode_anomaly(record.value))
        except SchemaError as exc:
            raise InvalidEvent(f"undecodable Anomaly: {exc}", "undecodable") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidEvent(f"Anomaly lacks a usable field: {exc!r}", "invalid_event") from None
        out.emit(self.topics.signals, SIGNAL_KEY,
                 json.dumps({"o": sig.ts_us, "s": sig.to_json()}, separators=(",", ":")).encode())

    def _feedback(self, record: Record, out: Output) -> None:
        """A verdict goes to the global stage (which knows the incidents' fingerprints) unordered:
        it is a person's input, not an event of the estate."""
        if not record.value:
            return  # a tombstone: the verdict was withdrawn; the counts keep what they had
        try:
            plain = self._decode_feedback(record.value)
            verdict = {k: plain.get(k) for k in ("incident_id", "outcome", "remediation")}
        except SchemaError as exc:
            raise InvalidEvent(f"undecodable Feedback: {exc}", "undecodable") from None
        out.emit(self.topics.signals, SIGNAL_KEY, json.dumps({"fb": verdict}, separators=(",", ":")).encode())

    def _signal(self, record: Record) -> None:
        if self._corr is None:
            self._restore(GLOBAL, self._load(GLOBAL))
        aligner, corr = self._aligner, self._corr
        assert aligner is not None and corr is not None
        try:
            msg = json.loads(record.value)
            if "tick" in msg:
                self._release(aligner, corr)
            elif "fb" in msg:
                assert self._outcomes is not None
                self._outcomes.verdict(dict(msg["fb"]))
            elif "p" in msg:
                # a mark: the partition's promise ("l"; one written before promises trails its watermark)
                high = int(msg["w"])
                low = int(msg["l"]) if "l" in msg else high - self.lateness_us
                aligner.mark(str(msg["p"]), low, int(msg.get("o", 0)), high)
                self._release(aligner, corr)
            else:
                sig = Signal.from_json(msg["s"])
                if not aligner.offer(int(msg["o"]), sig.id, msg["s"]):
                    self._pending |= corr.process(sig)
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidEvent(f"unreadable correlator signal: {exc!r}", "invalid_signal") from None
        self._dirty.add(GLOBAL)

    def _release(self, aligner: Aligner, corr: Correlator) -> None:
        expected = self._expected(aligner)
        idle, self._waiting = set(), False
        for part in sorted(expected):
            if part in aligner.marks:
                p, offset = int(part[2:]), aligner.offsets.get(part, 0)
                if self.probe.idle(p, offset):
                    idle.add(part)
                elif aligner.buffer and self.probe.caught_up(p, offset):
                    self._waiting = True  # read to the end; normalize may not have finished: ask again
        threshold = aligner.threshold(expected, idle)
        if threshold is None:
            return
        for key, raw in aligner.release(threshold):
            self._pending |= corr.advance(key)  # lifecycle moves with each signal, not with batch edges
            self._pending |= corr.process(Signal.from_json(raw))
        self._pending |= corr.advance(threshold)

    def _expected(self, aligner: Aligner) -> set[str]:
        count = self.probe.partitions()
        missing = [p for p in range(count) if f"e:{p}" not in aligner.marks and p not in self._absent]
        if missing and self._now() - self._probed_at >= PROBE_EVERY_S:
            self._probed_at = self._now()
            self._absent = {p for p in range(count) if f"e:{p}" not in aligner.marks and self.probe.empty(p)}
        return {f"e:{p}" for p in range(count) if p not in self._absent or f"e:{p}" in aligner.marks}

    # -- batch end, checkpoint -------------------------------------------------------------------
    def end_batch(self, out: Output) -> None:
        for p in sorted(self._touched):
            self._dirty.add(clock_key(p))
            clock = self._clocks[p]
            mark = {"p": f"e:{p}", "l": clock.promise(self.lateness_us), "w": clock.watermark_us,
                    "o": self._next_offset[p]}
            out.emit(self.topics.signals, SIGNAL_KEY, json.dumps(mark, separators=(",", ":")).encode())
        self._touched.clear()
        if self._waiting and self._ticks < MAX_TICKS:
            # the runtime calls a step only with records: a tick brings the release check back
            self._ticks += 1
            out.emit(self.topics.signals, SIGNAL_KEY, b'{"tick":1}')
        elif not self._waiting:
            self._ticks = 0
        if self._pending and self._corr is not None and self._outcomes is not None:
            corr, outcomes = self._corr, self._outcomes
            for iid in sorted(self._pending):
                inc = corr.incidents.get(iid)
                if inc is not None:
                    incident = build(inc, corr, self.labeler, outcomes.tally())
                    root = incident.root_cause_candidates[0].service if incident.root_cause_candidates else ""
                    outcomes.published(iid, incident.fingerprint, root)
                    out.emit(self.topics.incidents, iid.encode(), self._encode(incident.to_avro()))
        self._pending.clear()
        if self._corr is not None:
            self._corr.evict()

    def dirty_states(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for key in self._dirty:
            if key == GLOBAL and self._aligner is not None and self._corr is not None:
                out[key] = {"align": self._aligner.to_json(), "corr": self._corr.to_json(),
                            "out": (self._outcomes or Outcomes()).to_json()}
            elif key != GLOBAL:
                clock = self._clocks.get(int(key.rsplit(":", 1)[1]))
                if clock is not None:
                    out[key] = clock.to_json()
        self._dirty.clear()
        return out

    def revoked(self) -> None:
        self._clocks.clear()
        self._touched.clear()
        self._dirty.clear()
        self._aligner = self._corr = None
        self._outcomes = None
        self._pending.clear()
