"""On the real broker: ingest → worker (normalize → score) → seismo.anomalies, with explanations."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from schemas.codec import codec_for
from schemas.models import Anomaly
from tests.kafka_utils import Env, read_topic, stop, wait_for

pytestmark = pytest.mark.kafka

T0 = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)
SPIKE_POINT = 250  # metric points are 30 s apart: minute 125
BURST_MINUTE = 110


def stamp(at: timedelta) -> str:
    return (T0 + at).isoformat().replace("+00:00", "Z")


def scenario(path: Path) -> None:
    """A stable latency series with one spike, and a steady log line with one burst minute."""
    rng = random.Random(5)
    rows = []
    for i in range(300):
        value = 900.0 if i == SPIKE_POINT else round(120 + rng.gauss(0, 4), 2)
        rows.append({
            "id": f"m-{i}", "source": "cloudwatch", "kind": "metric",
            "timestamp": stamp(timedelta(seconds=30 * i)),
            "service": "checkout", "severity": "info", "message": "latency p95",
            "metric": {"name": "latency_p95_ms", "value": value, "unit": "ms"},
        })
    for minute in range(150):
        for j in range(40 if minute == BURST_MINUTE else 4):
            rows.append({
                "id": f"l-{minute}-{j}", "source": "kubernetes", "kind": "log",
                "timestamp": stamp(timedelta(minutes=minute, seconds=j)), "service": "checkout",
                "severity": "info",
                "message": f"GET /api/cart/{rng.randint(1, 9999)} 200 in {rng.randint(3, 90)}ms",
            })
    rows.sort(key=lambda r: (r["timestamp"], r["id"]))
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def anomalies(env: Env) -> list[Anomaly]:
    codec = codec_for("anomaly")
    return [Anomaly.from_avro(codec.decode(v)) for _, v in read_topic(env.topic("anomalies")) if v]


def test_a_metric_spike_and_a_log_burst_become_explained_anomalies(seismo_env: Env, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    scenario(path)
    seismo_env.seismo("ingest", str(path))
    worker = seismo_env.spawn("worker", log_name="worker")
    try:
        def both() -> bool:
            assert worker.poll() is None, seismo_env.log_tail("worker")
            signals = {a.signal.split(":")[0] for a in anomalies(seismo_env)}
            return {"metric", "template_rate"} <= signals

        try:
            wait_for(both, 90, "the spike and the burst on seismo.anomalies", interval=1.0)
        except AssertionError:
            raise AssertionError(f"{anomalies(seismo_env)}\n{seismo_env.log_tail('worker')}") from None
    finally:
        stop(worker)

    found = anomalies(seismo_env)
    spike = [a for a in found if a.signal == "metric:latency_p95_ms"]
    assert [a.event_id for a in spike] == [f"m-{SPIKE_POINT}"]
    assert spike[0].service == "checkout" and 0.5 <= spike[0].score <= 1.0
    assert spike[0].explanation["value"] == "900"
    assert 110 < float(spike[0].explanation["baseline.value"]) < 130
    burst = [a for a in found if a.signal.startswith("template_rate:")]
    assert [a.event_id for a in burst] == [f"l-{BURST_MINUTE}-0"]
    assert burst[0].explanation["count"] == "40" and burst[0].explanation["baseline_median"] == "4"
    assert burst[0].template_id is not None and burst[0].message.startswith("template burst: 40")
    assert len({a.id for a in found}) == len(found)
