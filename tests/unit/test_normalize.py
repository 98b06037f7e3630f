"""The normalize step around the Normalizer: templates loaded and saved through a StateStore."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from schemas.models import Event
from stream_processors.normalize.durable import (
    CheckpointPolicy,
    NormalizeStep,
    decode_state,
    encode_state,
    state_key,
)
from stream_processors.normalize.normalizer import Normalizer
from stream_processors.normalize.templating import InvalidState
from stream_processors.runtime.state import MemoryStateStore

T0 = datetime(2024, 1, 1, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class CountingStore(MemoryStateStore):
    def __init__(self) -> None:
        super().__init__()
        self.saves: list[str] = []

    async def save(self, key: str, value: dict[str, Any]) -> None:
        self.saves.append(key)
        await super().save(key, value)


def event(message: str, i: int = 0, service: str = "api", kind: str = "log") -> Event:
    extra: dict[str, Any] = {"metric": {"name": "m", "value": 1.0}} if kind == "metric" else {}
    return Event(
        id=f"ev-{i}", source="file", kind=kind, timestamp=T0, service=service, severity="info",
        message=message, **extra,
    )  # fmt: skip


def run(step: NormalizeStep, *events: Event) -> list[Event]:
    async def go() -> list[Event]:
        return [(await step.process(e)).event for e in events]

    return asyncio.run(go())


def new_step(store: MemoryStateStore, **policy: Any) -> NormalizeStep:
    return NormalizeStep(Normalizer(), store, CheckpointPolicy(**policy), clock=FakeClock())


def test_messages_differing_only_in_variables_share_a_template_id() -> None:
    a, b = run(
        new_step(MemoryStateStore()),
        event("user 17 logged in from 10.1.1.1", 0),
        event("user 9 logged in from 10.2.2.2", 1),
    )
    assert a.template == b.template == "user <NUM> logged in from <IP>"
    assert a.template_id == b.template_id
    assert a.message == "user 17 logged in from 10.1.1.1"


def test_a_new_or_widened_template_is_saved_before_the_event_is_returned() -> None:
    store = CountingStore()
    step = new_step(store)
    run(step, event("worker 4 finished job export in 3s"))
    assert store.saves == [state_key("api")]
    run(step, event("worker 5 finished job import in 3s", 1))  # generalizes: saved again
    assert store.saves == [state_key("api")] * 2
    run(step, event("worker 6 finished job import in 5s", 2))  # matched: not yet
    assert len(store.saves) == 2


def test_matched_events_are_saved_every_n_events_or_t_seconds() -> None:
    store = CountingStore()
    clock = FakeClock()
    step = NormalizeStep(Normalizer(), store, CheckpointPolicy(every_events=3, every_s=60.0), clock=clock)
    lines = [event(f"user {i} logged in from 10.0.0.{i}", i) for i in range(1, 8)]
    run(step, *lines)  # 1 new + 6 matched: saved on the new one, then after 3 and 6 matches
    assert len(store.saves) == 3
    clock.now = 60.0
    run(step, event("user 99 logged in from 10.0.0.99", 99))
    assert len(store.saves) == 4


def test_a_restarted_worker_keeps_its_template_ids() -> None:
    store = MemoryStateStore()
    lines = [
        event("user 17 logged in from 10.1.1.1", 0),
        event("cache miss for key orders:17 in region eu", 1),
        event("worker 4 finished job export in 3s", 2),
        event("worker 5 finished job import in 3s", 3),
    ]
    before = [e.template_id for e in run(new_step(store), *lines)]
    restarted = new_step(store)
    assert [e.template_id for e in run(restarted, *reversed(lines))] == before[::-1]
    assert run(restarted, event("worker 9 finished job other in 1s", 4))[0].template_id == before[3]


def test_metric_events_touch_no_state() -> None:
    store = CountingStore()
    (out,) = run(new_step(store), event("latency 812", kind="metric"))
    assert out.template == "latency 812" and out.template_id
    assert store.saves == []


def test_revoked_services_are_reloaded_from_the_store_when_next_seen() -> None:
    store = MemoryStateStore()
    mine, other_worker = new_step(store), new_step(store)
    run(mine, event("user 17 logged in from 10.1.1.1", 0))
    run(other_worker, event("cache miss for key orders:17 in region eu", 1))
    mine.forget_all()
    run(mine, event("worker 4 finished job export in 3s", 2))  # new template: saved
    saved = Normalizer()
    saved.restore("api", decode_state(asyncio.run(store.load(state_key("api"))) or {}))
    assert len(saved.miner("api").clusters) == 3  # the other worker's template was kept


def test_unusable_saved_state_is_relearned_with_the_same_ids() -> None:
    store = MemoryStateStore()
    (fresh,) = run(new_step(MemoryStateStore()), event("user 17 logged in from 10.1.1.1"))
    asyncio.run(store.save(state_key("api"), {"format": "something else"}))
    (out,) = run(new_step(store), event("user 17 logged in from 10.1.1.1"))
    assert out.template_id == fresh.template_id


def test_the_stored_value_round_trips_and_rejects_other_values() -> None:
    assert decode_state(encode_state(b"\x00snapshot")) == b"\x00snapshot"
    with pytest.raises(InvalidState):
        decode_state({"format": "seismo.normalize", "version": 1, "miner": "***"})
    with pytest.raises(InvalidState):
        decode_state({"format": "seismo.normalize", "version": 2, "miner": ""})


def test_flush_saves_services_with_unsaved_matches() -> None:
    store = CountingStore()
    step = new_step(store)
    run(step, event("user 1 logged in from 10.0.0.1", 1), event("user 2 logged in from 10.0.0.2", 2))
    assert len(store.saves) == 1
    asyncio.run(step.flush())
    assert len(store.saves) == 2
