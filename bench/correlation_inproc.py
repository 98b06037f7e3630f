"""The correlate step driven in process, without a broker (``bench/correlation.py --in-process``).

Feeds Avro-encoded events to :class:`~stream_processors.correlate.adapter.CorrelateAdapter`
partition by partition, loops its signals back as the signals topic would, and keeps
the latest state of every incident it publishes.  No normalize (no template ids) and
no scorer (no anomalies): a fast approximation for tuning, and the per-event cost of
the step.  Also runs the walking skeleton's rule (:mod:`stream_processors.correlate.logic`)
for ``--baseline``.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Sequence

from schemas.codec import codec_for
from schemas.models import Event, Incident
from seismo.topics import Topics
from stream_processors.correlate.adapter import CorrelateAdapter
from stream_processors.correlate.correlator import CorrelatorConfig
from stream_processors.correlate.logic import CorrelateConfig, ServiceState, advance, apply
from stream_processors.correlate.probe import FixedProbe
from stream_processors.runtime.step import Output, Record

TOPICS = Topics("raw", "enriched", "anomalies", "cursors", "incidents", "dlq", "signals")


def run_adapter(events: Sequence[Event], partitions: int = 3, batch: int = 500,
                cfg: CorrelatorConfig | None = None) -> tuple[list[Incident], float]:
    """(latest incidents, seconds spent in the step) for ``events`` in timestamp order."""
    encode, decode = codec_for("event").encode, codec_for("incident").decode
    by_part: list[list[Record]] = [[] for _ in range(partitions)]
    for e in events:
        p = zlib.crc32(e.service.encode()) % partitions
        by_part[p].append(Record(TOPICS.enriched, p, len(by_part[p]), e.service.encode(),
                                 encode(e.to_avro()), 0))
    empty = frozenset(p for p in range(partitions) if not by_part[p])
    ends = {p: len(by_part[p]) for p in range(partitions)}
    probe = FixedProbe(partitions, empty, ends)
    step = CorrelateAdapter(TOPICS, cfg or CorrelatorConfig(max_evidence=2000), probe)
    latest: dict[str, Incident] = {}
    spent = 0.0
    cursor = [0] * partitions
    signals: list[Record] = []
    while any(cursor[p] < len(by_part[p]) for p in range(partitions)) or signals:
        records: list[Record] = []
        for p in range(partitions):  # round robin, one chunk per partition: skewed like a real fetch
            records.extend(by_part[p][cursor[p]:cursor[p] + batch])
            cursor[p] += batch
        records.extend(signals)
        signals = []
        out = Output()
        started = time.perf_counter()
        for r in records:
            step.handle(r, out)
        step.end_batch(out)
        step.dirty_states()
        spent += time.perf_counter() - started
        for topic, key, value in out.records:
            if topic == TOPICS.signals:
                signals.append(Record(TOPICS.signals, 0, 0, key, value, 0))
            elif topic == TOPICS.incidents and key is not None:
                latest[key.decode()] = Incident.from_avro(decode(value))
    return list(latest.values()), spent


def run_baseline(events: Sequence[Event]) -> list[Incident]:
    """The skeleton's rule: error events of one service < 5 minutes apart are one incident."""
    cfg = CorrelateConfig()
    states: dict[str, ServiceState] = {}
    latest: dict[str, Incident] = {}
    for e in events:
        state = states.get(e.service) or ServiceState(e.service)
        if e.is_anomalous:
            state, incs = apply(state, e, cfg)
        else:
            state, incs = advance(state, int(e.timestamp.timestamp() * 1e6), cfg)
        states[e.service] = state
        for inc in incs:
            latest[inc.id] = inc
    return [i.model_copy(update={"detected_at": i.opened_at}) for i in latest.values()]
