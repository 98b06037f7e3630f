"""The gateway's recent-window readers on the real broker: the records of the lookback, and caught
up once every partition was read to its end."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from mcp_gateway.anomalies import AnomalyMaterializer, AnomalyWindow
from producers.publisher import KafkaPublisher
from schemas.codec import codec_for
from schemas.models import Anomaly
from tests.kafka_utils import wait_for

pytestmark = pytest.mark.kafka

T0 = datetime(2024, 6, 1, tzinfo=UTC)


def anomaly(n: int) -> Anomaly:
    return Anomaly(
        id=f"an-{n}", event_id=f"ev-{n}", service=f"svc-{n % 2}", source="grafana", kind="metric",
        severity="warning", timestamp=T0 + timedelta(seconds=n), score=0.9, signal="metric:latency_ms",
    )


def read_to_the_end(bootstrap: str, topic: str, window: AnomalyWindow, what: str) -> None:
    """Run a reader into ``window`` until it says it caught up, then stop it."""
    reader = AnomalyMaterializer(bootstrap, topic, window)
    reader.start()
    try:
        wait_for(window.caught_up.is_set, 30, what)
    finally:
        reader.stop()


def test_the_anomaly_reader_reads_the_lookback_of_every_partition_and_says_when_caught_up(
    kafka_bootstrap: str,
) -> None:
    topic = f"t-{uuid.uuid4().hex[:10]}.seismo.anomalies"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(30)
    try:
        pub, codec = KafkaPublisher(kafka_bootstrap), codec_for("anomaly")
        for n in range(10):
            pub.publish(topic, f"svc-{n % 2}".encode(), codec.encode(anomaly(n).to_avro()))
        pub.flush()
        window = AnomalyWindow(max_items=100)
        read_to_the_end(kafka_bootstrap, topic, window, "the anomaly reader to catch up")
        assert window.ever_published
        assert sorted(a.id for a in window.query()) == sorted(f"an-{n}" for n in range(10))

        # an hour from now, nothing on the topic is inside a one-minute lookback
        later = AnomalyWindow(max_items=100, lookback_s=60, clock=lambda: time.time() + 3600)
        read_to_the_end(kafka_bootstrap, topic, later, "the reader with an empty lookback to catch up")
        assert later.query() == [] and later.ever_published  # nothing recent, but the topic is in use
    finally:
        admin.delete_topics([topic])[topic].result(30)
