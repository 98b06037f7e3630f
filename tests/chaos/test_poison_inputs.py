"""1% garbage, truncated Avro and 5 MB messages on every input topic a step reads (raw, enriched, and
anomalies when a step consumes it): each is dead-lettered by each step that reads it, with its place
and a reason, and the clean events give the undisturbed run's incidents."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.codec import codec_for
from schemas.models import DeadLetter
from tests.chaos.conftest import Reference, Services
from tests.chaos.poison import KINDS, allow_large_messages, poison_only, publish_tracked, sprinkle
from tests.chaos.workload import assert_same_outcome, new_env, run_worker_to_the_end, step_inputs
from tests.kafka_utils import read_topic

pytestmark = [pytest.mark.kafka, pytest.mark.redis]


def test_poison_on_every_input_topic_is_dead_lettered_with_reasons_and_changes_no_incident(
    services: Services, reference: Reference, tmp_path: Path
) -> None:
    records = reference.records
    env = new_env(tmp_path, "chaos", services.kafka.bootstrap, services.redis.url)
    readers: dict[str, list[str]] = {}
    for step, topics in step_inputs(env).items():
        for topic in topics:
            readers.setdefault(topic, []).append(step)
    inputs = [env.topic(t) for t in ("events.raw", "events.enriched", "anomalies") if env.topic(t) in readers]
    assert env.topic("events.raw") in inputs and env.topic("events.enriched") in inputs
    allow_large_messages(env.bootstrap, inputs)

    placed: dict[str, list[tuple[str, int, int]]] = {}
    for topic in inputs:  # a step's own input topics get theirs before it starts
        if topic != env.topic("events.raw"):
            placed[topic] = publish_tracked(env.bootstrap, topic, poison_only(records, len(records) // 100))
    raw = env.topic("events.raw")
    placed[raw] = publish_tracked(env.bootstrap, raw, sprinkle(records))
    for topic, poisoned in placed.items():  # every kind of poison on every input topic, 1% on raw
        assert {kind for kind, _, _ in poisoned} == set(KINDS), topic
    assert len(placed[raw]) == len(records) // 100

    run_worker_to_the_end(env, 240)

    decode = codec_for("dead_letter").decode
    dlq = read_topic(env.topic("dlq"), broker=env.bootstrap)
    letters = [DeadLetter.from_avro(decode(v)) for _, v in dlq if v]
    by_place = {(d.component, d.topic, d.partition, d.offset): d for d in letters}
    for topic, poisoned in placed.items():
        for step in readers[topic]:
            for kind, partition, offset in poisoned:
                letter = by_place.get((step, topic, partition, offset))
                where = f"{topic}[{partition}]@{offset}"
                assert letter is not None, f"{step} did not dead-letter the {kind} at {where}"
                assert letter.reason and letter.error_type, letter
                assert len(letter.payload) <= 64 * 1024
    expected = sum(len(p) * len(readers[t]) for t, p in placed.items())
    assert len(letters) == expected, "a clean message was dead-lettered, or a poisoned one twice"
    assert_same_outcome(reference.env, env, reference.events)
