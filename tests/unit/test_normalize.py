"""Durable templates around the Normalizer: miners loaded from and saved to a StateStore at checkpoints."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from schemas.models import Event
from stream_processors.normalize.durable import (
    CheckpointPolicy,
    DurableTemplates,
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


def event(message: str, i: int = 0, service: str = "api", kind: str = "log") -> Event:
    extra: dict[str, Any] = {"metric": {"name": "m", "value": 1.0}} if kind == "metric" else {}
    return Event(
        id=f"ev-{i}", source="file", kind=kind, timestamp=T0, service=service, severity="info",
        message=message, **extra,
    )  # fmt: skip


def run(templates: DurableTemplates, store: MemoryStateStore, *events: Event) -> list[Event]:
    """What the runtime does with a batch: load the services not held, then process."""
    out = []
    for e in events:
        if not templates.loaded(e.service):
            templates.restore(e.service, asyncio.run(store.load(state_key(e.service))))
        out.append(templates.process(e).event)
    return out


def checkpoint(templates: DurableTemplates, store: MemoryStateStore) -> list[str]:
    """What the runtime does at a checkpoint (after the outputs were acknowledged)."""
    dirty = templates.dirty_states()
    asyncio.run(store.save_many(dirty))
    return sorted(dirty)


def new(**policy: Any) -> tuple[DurableTemplates, FakeClock]:
    clock = FakeClock()
    return DurableTemplates(Normalizer(), CheckpointPolicy(**policy), clock=clock), clock


def test_messages_differing_only_in_variables_share_a_template_id() -> None:
    templates, _ = new()
    a, b = run(
        templates, MemoryStateStore(),
        event("user 17 logged in from 10.1.1.1", 0), event("user 9 logged in from 10.2.2.2", 1),
    )
    assert a.template == b.template == "user <NUM> logged in from <IP>"
    assert a.template_id == b.template_id
    assert a.message == "user 17 logged in from 10.1.1.1"


def test_a_new_or_widened_template_is_saved_at_the_next_checkpoint_and_matches_wait() -> None:
    store = MemoryStateStore()
    templates, _ = new()
    run(templates, store, event("worker 4 finished job export in 3s"))
    assert checkpoint(templates, store) == [state_key("api")]
    run(templates, store, event("worker 5 finished job import in 3s", 1))  # generalizes
    assert checkpoint(templates, store) == [state_key("api")]
    run(templates, store, event("worker 6 finished job import in 5s", 2))  # matched: not yet
    assert checkpoint(templates, store) == []


def test_matched_events_are_saved_every_n_events_or_t_seconds() -> None:
    store = MemoryStateStore()
    templates, clock = new(every_events=3, every_s=60.0)
    run(templates, store, event("user 0 logged in from 10.0.0.9", 0))
    assert checkpoint(templates, store) == [state_key("api")]
    run(templates, store, *[event(f"user {i} logged in from 10.0.0.{i}", i) for i in range(1, 3)])
    assert checkpoint(templates, store) == []  # 2 matches
    run(templates, store, event("user 3 logged in from 10.0.0.3", 3))
    assert checkpoint(templates, store) == [state_key("api")]  # 3 matches
    run(templates, store, event("user 4 logged in from 10.0.0.4", 4))
    clock.now = 60.0
    assert checkpoint(templates, store) == [state_key("api")]  # 1 match, 60 s later


def test_a_restarted_worker_keeps_its_template_ids() -> None:
    store = MemoryStateStore()
    lines = [
        event("user 17 logged in from 10.1.1.1", 0),
        event("cache miss for key orders:17 in region eu", 1),
        event("worker 4 finished job export in 3s", 2),
        event("worker 5 finished job import in 3s", 3),
    ]
    first, _ = new()
    before = [e.template_id for e in run(first, store, *lines)]
    checkpoint(first, store)
    restarted, _ = new()
    assert [e.template_id for e in run(restarted, store, *reversed(lines))] == before[::-1]
    assert run(restarted, store, event("worker 9 finished job other in 1s", 4))[0].template_id == before[3]


def test_a_crash_before_the_checkpoint_replays_to_the_same_template_ids() -> None:
    store = MemoryStateStore()
    lines = [event(f"job {i} of user u{i % 3} took {i}s in pool p{i % 2}", i) for i in range(6)]
    first, _ = new()
    run(first, store, *lines[:2])
    checkpoint(first, store)
    published = run(first, store, *lines[2:])  # sent, then the worker dies before its checkpoint
    replayed, _ = new()
    assert [e.template_id for e in run(replayed, store, *lines[2:])] == [e.template_id for e in published]


def test_metric_events_touch_no_state() -> None:
    store = MemoryStateStore()
    templates, _ = new()
    (out,) = run(templates, store, event("latency 812", kind="metric"))
    assert out.template == "latency 812" and out.template_id
    assert checkpoint(templates, store) == []


def test_revoked_services_are_reloaded_from_the_store_when_next_seen() -> None:
    store = MemoryStateStore()
    (mine, _), (other_worker, _) = new(), new()
    run(mine, store, event("user 17 logged in from 10.1.1.1", 0))
    checkpoint(mine, store)
    mine.forget_all()
    run(other_worker, store, event("cache miss for key orders:17 in region eu", 1))
    checkpoint(other_worker, store)
    run(mine, store, event("worker 4 finished job export in 3s", 2))  # reloaded, then a new template
    checkpoint(mine, store)
    saved = Normalizer()
    saved.restore("api", decode_state(asyncio.run(store.load(state_key("api"))) or {}))
    assert len(saved.miner("api").clusters) == 3  # the other worker's template was kept


def test_unusable_saved_state_is_relearned_with_the_same_ids() -> None:
    fresh_templates, _ = new()
    (fresh,) = run(fresh_templates, MemoryStateStore(), event("user 17 logged in from 10.1.1.1"))
    store = MemoryStateStore()
    asyncio.run(store.save(state_key("api"), {"format": "something else"}))
    templates, _ = new()
    (out,) = run(templates, store, event("user 17 logged in from 10.1.1.1"))
    assert out.template_id == fresh.template_id


def test_the_stored_value_round_trips_and_rejects_other_values() -> None:
    assert decode_state(encode_state(b"\x00snapshot")) == b"\x00snapshot"
    with pytest.raises(InvalidState):
        decode_state({"format": "seismo.normalize", "version": 1, "miner": "***"})
    with pytest.raises(InvalidState):
        decode_state({"format": "seismo.normalize", "version": 2, "miner": ""})
