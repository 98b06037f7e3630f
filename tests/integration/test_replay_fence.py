"""A checkpoint whose states were saved but whose commit did not land (the process died between
the two, the group rebalanced, the coordinator went away) must not make the next owner apply
those records to the states a second time: the runtime's replay fence, saved in the same write as
the states, tells it where the saved states stand.  A fence is ignored once the group's committed
offset moved elsewhere (an operator reset the offsets): then the records are processed again."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from producers.publisher import KafkaPublisher
from seismo.settings import Settings
from seismo.topics import ensure_topics
from stream_processors.runtime.loop import StepRuntime
from stream_processors.runtime.state import MemoryStateStore
from stream_processors.runtime.step import Output, Record
from tests.kafka_utils import Env, read_topic, wait_for
from tests.runtime_steps import StatelessStep

pytestmark = pytest.mark.kafka
KEYS = (b"a", b"b", b"c")


class CountingStep(StatelessStep):
    """Counts records per key in a saved state and emits the running count: applying a record
    twice shows in the state and in the outputs."""

    name = "score"

    def __init__(self, env: Env) -> None:
        super().__init__(env.topic("events.enriched"))
        self.out = env.topic("anomalies")
        self.counts: dict[str, int] = {}
        self._dirty: set[str] = set()
        self.handled = 0

    def state_keys(self, records: list[Record]) -> Iterable[str]:
        return {f"count:{r.key.decode()}" for r in records if r.key and r.key.decode() not in self.counts}

    def restore(self, saved: dict[str, dict[str, Any]], wanted: set[str]) -> None:
        for key in wanted:
            self.counts[key.split(":", 1)[1]] = int(saved.get(key, {}).get("n", 0))

    def handle(self, record: Record, out: Output) -> None:
        assert record.key is not None
        key = record.key.decode()
        self.counts[key] += 1
        self._dirty.add(key)
        self.handled += 1
        out.emit(self.out, record.key, f"{key}={self.counts[key]}".encode())

    def dirty_states(self) -> dict[str, dict[str, Any]]:
        values = {f"count:{k}": {"n": self.counts[k]} for k in self._dirty}
        self._dirty.clear()
        return values

    def revoked(self) -> None:
        self.counts.clear()
        self._dirty.clear()


class DiesAfterSaving(MemoryStateStore):
    """A store whose process dies right after the first save that holds ``n`` records or more
    (the save landed; the commit that would follow never happens)."""

    def __init__(self, data: dict[str, str], n: int) -> None:
        super().__init__()
        self.data, self.n = data, n

    async def save_many(self, values: dict[str, dict[str, Any]]) -> None:
        await super().save_many(values)
        if sum(int(v.get("n", 0)) for k, v in values.items() if k.startswith("count:")) >= self.n:
            raise SystemExit("killed between the save and the commit")


def publish(env: Env, n: int, start: int = 0) -> None:
    pub = KafkaPublisher(env.bootstrap)
    for i in range(start, start + n):
        pub.publish(env.topic("events.enriched"), KEYS[i % len(KEYS)], f"record {i}".encode())
    pub.flush()


def saved_total(data: dict[str, str]) -> int:
    return sum(json.loads(v)["n"] for k, v in data.items() if k.startswith("count:"))


def run_until(
    settings: Settings, step: CountingStep, store: MemoryStateStore, done: Callable[[], bool]
) -> None:
    runtime = StepRuntime(settings, step, store, batch_size=40, checkpoint_s=0.05)
    failure: list[BaseException] = []

    def main() -> None:
        try:
            runtime.run()
        except BaseException as exc:  # the injected death, handed to the test
            failure.append(exc)

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    try:
        wait_for(lambda: bool(failure) or done(), 60, "the runtime to finish its part")
    finally:
        runtime.stop()
        thread.join(30)
    assert not thread.is_alive()


def committed(env: Env, settings: Settings) -> int:
    consumer = Consumer({"bootstrap.servers": env.bootstrap, "group.id": settings.group_id("score")})
    try:
        [tp] = consumer.committed([TopicPartition(env.topic("events.enriched"), 0)], timeout=10)
        return int(tp.offset)
    finally:
        consumer.close()


@pytest.fixture
def settings(seismo_env: Env) -> Settings:
    settings = seismo_env.settings.model_copy(update={"partitions": 1})
    ensure_topics(settings)
    return settings


def test_records_saved_but_not_committed_are_not_applied_twice_by_the_next_owner(
    seismo_env: Env, settings: Settings
) -> None:
    env, total = seismo_env, 300
    publish(env, 150)
    data: dict[str, str] = {}
    first = CountingStep(env)
    run_until(settings, first, DiesAfterSaving(data, n=100), lambda: False)
    behind = committed(env, settings)
    assert behind < first.handled, "the first owner must have died with saved but uncommitted records"
    assert saved_total(data) == first.handled

    publish(env, total - 150, start=150)
    second = CountingStep(env)
    store = MemoryStateStore()
    store.data = data
    run_until(settings, second, store, lambda: committed(env, settings) == total)
    assert second.handled == total - first.handled, "records the saved states held were applied again"
    assert saved_total(data) == total
    outputs = [v.decode() for _, v in read_topic(env.topic("anomalies"), broker=env.bootstrap) if v]
    assert sorted(outputs) == sorted(f"{KEYS[i % 3].decode()}={i // 3 + 1}" for i in range(total))


def test_a_fence_is_ignored_once_the_offsets_were_reset_elsewhere(
    seismo_env: Env, settings: Settings
) -> None:
    env, total = seismo_env, 90
    publish(env, total)
    store = MemoryStateStore()
    first = CountingStep(env)
    run_until(settings, first, store, lambda: committed(env, settings) == total)
    # an operator resets the group to the start (kafka-consumer-groups --reset-offsets --to-earliest)
    reset = Consumer({"bootstrap.servers": env.bootstrap, "group.id": settings.group_id("score")})
    try:
        reset.commit(offsets=[TopicPartition(env.topic("events.enriched"), 0, 0)], asynchronous=False)
    finally:
        reset.close()
    second = CountingStep(env)
    run_until(settings, second, store, lambda: second.handled == total and committed(env, settings) == total)
    assert second.handled == total, "a reset group processes every record again"
    assert saved_total(store.data) == 2 * total


class BatchSizes(CountingStep):
    """Also records how many records each batch brought."""

    def __init__(self, env: Env) -> None:
        super().__init__(env)
        self.sizes: list[int] = []
        self._batch = 0

    def handle(self, record: Record, out: Output) -> None:
        self._batch += 1
        super().handle(record, out)

    def end_batch(self, out: Output) -> None:
        self.sizes.append(self._batch)
        self._batch = 0


def test_the_first_batches_ramp_up_to_the_batch_size_and_lose_nothing(
    seismo_env: Env, settings: Settings
) -> None:
    env = seismo_env
    publish(env, 3000)
    step = BatchSizes(env)
    runtime = StepRuntime(settings, step, MemoryStateStore(), batch_size=1000, checkpoint_s=60)
    thread = threading.Thread(target=runtime.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: step.handled >= 3000, 60, "every record handled")
    finally:
        runtime.stop()
        thread.join(30)
    sizes = [n for n in step.sizes if n]
    assert sum(sizes) == step.handled == 3000
    # at most 100, 200, 400, 800 records in the first four batches, then up to batch_size
    assert all(n <= min(1000, 100 << i) for i, n in enumerate(sizes)), sizes
    assert max(sizes) > 800, sizes  # the ramp ends at the configured batch size
