"""Pollers against the real Kafka broker (``SEISMO_KAFKA_BOOTSTRAP``, default the local one).

Each test creates its own uuid-named topics.  A missing broker fails these
tests (topic creation raises); it never skips them.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from producers.config import PollersFile, SentryConfig
from producers.cursors import KafkaCursorStore, read_cursors
from producers.poll import Wiring, open_poller
from producers.publisher import KafkaPublisher
from producers.ratelimit import FakeClock
from schemas.codec import codec_for
from schemas.models import Event
from tests.fakes.sentry import FakeSentry, make_issue, make_latest_event

pytestmark = pytest.mark.kafka
BOOTSTRAP = os.environ.get("SEISMO_KAFKA_BOOTSTRAP", "127.0.0.1:29092")


@pytest.fixture
def topics() -> Iterator[dict[str, str]]:
    suffix = uuid.uuid4().hex[:10]
    names = {"raw": f"test.raw.{suffix}", "dlq": f"test.dlq.{suffix}", "cursors": f"test.cursors.{suffix}"}
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    specs = [
        NewTopic(names["raw"], 1, 1),
        NewTopic(names["dlq"], 1, 1),
        NewTopic(names["cursors"], 1, 1, config={"cleanup.policy": "compact"}),
    ]
    for future in admin.create_topics(specs, operation_timeout=20).values():
        future.result(30)  # raises when the broker is missing: the test fails loudly
    yield names
    for future in admin.delete_topics(list(names.values()), operation_timeout=20).values():
        future.result(30)


def read_all(topic: str, expected: int, deadline_s: float = 30.0) -> list[bytes]:
    consumer = Consumer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "group.id": f"t-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "log_level": 3,
        }
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    values: list[bytes] = []
    deadline = time.monotonic() + deadline_s
    try:
        while len(values) < expected and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                values.append(msg.value() or b"")
        # anything beyond ``expected`` that is already there would be a duplicate: drain it too
        msg = consumer.poll(1.0)
        while msg is not None:
            values.append(msg.value() or b"")
            msg = consumer.poll(0.5)
    finally:
        consumer.close()
    return values


def sentry_config(url: str) -> PollersFile:
    return PollersFile(
        sentry=SentryConfig(
            base_url=url,
            organization="acme",
            projects=("payments",),
            releases=False,
            performance=False,
            page_size=2,
        )
    )


async def run_pages(cfg: PollersFile, names: dict[str, str], pages: int | None) -> KafkaCursorStore:
    publisher = KafkaPublisher(BOOTSTRAP, client_id="test-poller")
    store = await asyncio.to_thread(KafkaCursorStore.restore, BOOTSTRAP, names["cursors"], publisher)
    wiring = Wiring(
        publisher,
        store,
        names["raw"],
        names["dlq"],
        clock=FakeClock(),
        environ={"SEISMO_SENTRY_TOKEN": "sntrys-test"},
    )
    async with open_poller("sentry", cfg, wiring) as poller:
        if pages is None:
            await poller.cycle()
        else:
            for _ in range(pages):
                await poller.poll_once(poller.streams[0])
    return store


def test_a_poller_stopped_mid_scan_resumes_from_its_kafka_cursor_without_loss_or_duplicates(
    topics: dict[str, str],
) -> None:
    with FakeSentry() as fake:
        for i in range(1, 6):
            seen = f"2024-05-01T11:{10 + i:02d}:00.000000Z"
            fake.issues.append(make_issue(str(i), "payments", seen))
            fake.latest[str(i)] = make_latest_event(f"{i:032x}", seen)
        asyncio.run(run_pages(sentry_config(fake.url), topics, pages=2))
        restored = read_cursors(BOOTSTRAP, topics["cursors"])
        assert restored == {
            "sentry/issues:payments": {
                "since": "2024-05-01T11:00:00Z",
                "scan_max": "2024-05-01T11:15:00Z",
                "page": "0:4:0",
            }
        }
        store = asyncio.run(run_pages(sentry_config(fake.url), topics, pages=None))
        assert fake.calls("/api/0/projects/")[2].param("cursor") == "0:4:0"
    codec = codec_for("event")
    events = [Event.from_avro(codec.decode(v)) for v in read_all(topics["raw"], expected=5)]
    ids = [e.id for e in events]
    assert len(ids) == len(set(ids)) == 5
    assert sorted(e.attributes["issue_id"] for e in events) == ["1", "2", "3", "4", "5"]
    final = {"since": "2024-05-01T11:15:00Z", "scan_max": None, "page": None}
    assert store.load("sentry/issues:payments") == final
    assert read_cursors(BOOTSTRAP, topics["cursors"]) == {"sentry/issues:payments": final}


def test_the_kafka_cursor_store_restores_the_latest_cursor_per_key(topics: dict[str, str]) -> None:
    publisher = KafkaPublisher(BOOTSTRAP, client_id="test-cursors")
    store = KafkaCursorStore.restore(BOOTSTRAP, topics["cursors"], publisher)
    assert store.load("grafana/alerts") is None
    store.save("grafana/alerts", {"firing": ["a"]})
    store.save("kubernetes/events:prod:shop", {"rv": "10"})
    store.save("grafana/alerts", {"firing": ["a", "b"]})
    publisher.publish(topics["cursors"], b"kubernetes/events:prod:shop", b"not json")
    publisher.flush()
    again = KafkaCursorStore.restore(BOOTSTRAP, topics["cursors"], publisher)
    assert again.load("grafana/alerts") == {"firing": ["a", "b"]}
    assert again.load("kubernetes/events:prod:shop") == {"rv": "10"}
