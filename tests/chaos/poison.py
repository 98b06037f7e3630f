"""Poison for the input topics: 1% garbage, truncated Avro and 5 MB messages among clean events.

Shared by the poison scenario (everything dead-lettered with a reason, nothing else changed) and
``bench/chaos_throughput.py`` (clean against dirty input, same run).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

from schemas.codec import codec_for
from schemas.models import Event

BIG = 5 * 1024 * 1024
TOPIC_MAX_BYTES = 8 * 1024 * 1024
KINDS = ("garbage", "truncated", "big-garbage", "big-event")


@dataclass(frozen=True)
class Outgoing:
    key: bytes
    value: bytes
    kind: str | None  # None: a clean message; else which poison


def poison(kind: str, clean: bytes, rng: random.Random) -> bytes:
    """One poisoned value: random bytes, a valid encoding cut short, or a 5 MB message (random bytes,
    or a valid Event whose message is 5 MB of text)."""
    if kind == "garbage":
        return rng.randbytes(rng.randint(1, 400))
    if kind == "truncated":
        return clean[: max(1, len(clean) // 2)]
    if kind == "big-garbage":
        return rng.randbytes(BIG)
    huge = Event(id=f"huge-{rng.getrandbits(32)}", source="kubernetes", kind="log",
                 timestamp="2024-06-03T00:00:00Z", service="svc-0", severity="error", message="x" * BIG)
    return codec_for("event").encode(huge.to_avro())


def sprinkle(records: list[tuple[bytes, bytes]], ratio: float = 0.01, big: int = 2,
             seed: int = 3) -> list[Outgoing]:
    """``records`` with poison after ``ratio`` of them (garbage and truncated Avro in turn, keyed as
    their neighbour), of which ``big`` are 5 MB."""
    rng = random.Random(seed)
    every = max(1, round(1 / ratio))
    out: list[Outgoing] = []
    made = 0
    for i, (key, value) in enumerate(records):
        out.append(Outgoing(key, value, None))
        if i % every == every // 2:
            kind = KINDS[2 + made % 2] if made < big else KINDS[made % 2]
            out.append(Outgoing(key, poison(kind, value, rng), kind))
            made += 1
    return out


def poison_only(
    records: list[tuple[bytes, bytes]], count: int, big: int = 2, seed: int = 5
) -> list[Outgoing]:
    """``count`` poisoned messages (``big`` of them 5 MB) made from ``records``, for a topic a step writes."""
    rng = random.Random(seed)
    out = []
    for n in range(count):
        key, value = records[n * 37 % len(records)]
        kind = KINDS[2 + n % 2] if n < big else KINDS[n % 2]
        out.append(Outgoing(key, poison(kind, value, rng), kind))
    return out


def allow_large_messages(bootstrap: str, topics: list[str]) -> None:
    """Let ``topics`` hold 5 MB messages (the default limit is 1 MB, where the broker refuses them
    before any step sees one)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    resources = [ConfigResource(ResourceType.TOPIC, t, incremental_configs=[ConfigEntry(
        "max.message.bytes", str(TOPIC_MAX_BYTES), incremental_operation=AlterConfigOpType.SET)])
        for t in topics]
    for future in admin.incremental_alter_configs(resources).values():
        future.result(30)


def publish_tracked(bootstrap: str, topic: str, messages: list[Outgoing]) -> list[tuple[str, int, int]]:
    """Send ``messages`` in order; returns the (kind, partition, offset) of every poisoned one."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                         "linger.ms": 20, "message.max.bytes": TOPIC_MAX_BYTES + 1024 * 1024})
    placed: list[tuple[str, int, int]] = []
    failed: list[str] = []

    def delivered(kind: str | None) -> object:
        def report(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                failed.append(err.str())
            elif kind is not None:
                placed.append((kind, int(msg.partition() or 0), int(msg.offset() or 0)))
        return report

    for m in messages:
        while True:
            try:
                producer.produce(topic, m.value, m.key, on_delivery=delivered(m.kind))
                break
            except BufferError:
                producer.poll(0.5)
        producer.poll(0)
    assert producer.flush(120) == 0, "poison not acknowledged"
    assert not failed, failed[:3]
    return placed
