"""Run by tests/unit/test_native.py in a subprocess (with and without the compiled modules):
prints a digest of what the hot modules make of a simulated estate, and which form ran."""

from __future__ import annotations

import hashlib
import json
import math
import random
import sys
from datetime import UTC, datetime, timedelta

from models.series import MetricDetector
from producers.simulate import simulate
from schemas.codec import codec_for
from seismo.native import active
from seismo.settings import Settings
from seismo.topics import Topics
from stream_processors.normalize.adapter import NormalizeAdapter
from stream_processors.normalize.durable import DurableTemplates
from stream_processors.normalize.normalizer import Normalizer
from stream_processors.runtime.step import Output, Record
from stream_processors.score.adapter import ScoreAdapter

Sent = list[tuple[str, bytes | None, bytes]]


def _run(adapter: NormalizeAdapter | ScoreAdapter, records: list[Record]) -> Sent:
    adapter.attach(lambda key: None)
    outs: Sent = []
    for i in range(0, len(records), 500):
        chunk = records[i : i + 500]
        adapter.restore({}, set(adapter.state_keys(chunk)))
        out = Output()
        for record in chunk:
            adapter.handle(record, out)
        adapter.end_batch(out)
        adapter.dirty_states()
        outs += out.records
    return outs


def main() -> None:
    digest = hashlib.sha256()
    rng = random.Random(11)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    detector = MetricDetector(seed=0)
    flagged = 0
    for i in range(3000):
        value = 100 + 10 * math.sin(i / 40) + rng.gauss(0, 1) + (60 if 2400 <= i < 2420 else 0)
        point = detector.process(start + timedelta(seconds=15 * i), value)
        flagged += point.is_anomaly
        digest.update(repr((point.score, point.is_anomaly)).encode())
    digest.update(json.dumps(detector.to_state(), sort_keys=True).encode())

    events, _ = simulate(services=6, incidents=3, seed=5, duration=timedelta(minutes=120))
    codec = codec_for("event")
    raw = [Record("raw", 0, i, e.service.encode(), codec.encode(e.to_avro()), 0)
           for i, e in enumerate(events)]
    settings = Settings()
    topics = Topics.from_settings(settings)
    enriched = _run(NormalizeAdapter(topics, DurableTemplates(Normalizer()), None), raw)
    records = [Record(t, 0, i, k, v, 0) for i, (t, k, v) in enumerate(enriched)]
    anomalies = _run(ScoreAdapter.from_settings(settings), records)
    for topic, key, value in enriched + anomalies:
        digest.update(topic.encode() + b"\0" + (key or b"") + b"\0" + value)
    print(json.dumps({
        "native": active(), "digest": digest.hexdigest(), "metric_flags": flagged,
        "events": len(events), "enriched": len(enriched), "anomalies": len(anomalies),
    }))


if __name__ == "__main__":
    sys.exit(main())
