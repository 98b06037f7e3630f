"""``seismo simulate``: a synthetic multi-service estate with injected incidents and ground truth.

:func:`simulate` is pure and deterministic: the same arguments give the same events
with the same ids (ids are derived from content) in the same order, and
:func:`write_simulation` writes them byte-identically.  Every event is validated
against the ingest contract with :func:`producers.ingest.parse_event`, so the JSONL
file feeds ``seismo ingest`` as is.

The ground truth names, per injected incident, its kind, root-cause service,
affected services, the sources it touched, its onset (first signal) and end (last
signal), and the ids of every event it caused, including background metric points
the fault bent.  Background traffic can still hold unrelated one-off errors; they
are not in the truth.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from producers.ingest import parse_event
from producers.simulate_background import MetricEffect, background
from producers.simulate_faults import GENERATORS, Fault, FaultKind, choose_root
from producers.simulate_world import World, build_world, iso
from schemas.models import Event

DEFAULT_START = datetime(2024, 5, 14, 8, 0, tzinfo=UTC)
DEFAULT_DURATION = timedelta(hours=2)
MIN_DURATION = timedelta(minutes=40)


@dataclass(frozen=True)
class InjectedIncident:
    """One fault as injected: what the pipeline should find."""

    id: str
    kind: FaultKind
    root_cause: str
    affected: tuple[str, ...]
    sources: tuple[str, ...]
    onset: datetime
    end: datetime
    event_ids: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value, "root_cause": self.root_cause, "affected": list(self.affected),
            "sources": list(self.sources), "onset": iso(self.onset), "end": iso(self.end),
            "event_ids": list(self.event_ids),
        }


@dataclass(frozen=True)
class GroundTruth:
    seed: int
    start: datetime
    end: datetime
    world: World
    incidents: tuple[InjectedIncident, ...]

    def to_json(self) -> dict[str, Any]:
        """The ``truth.json`` document: incidents keyed by id, plus the topology they ran on."""
        return {
            "seed": self.seed, "start": iso(self.start), "end": iso(self.end),
            "services": list(self.world.services),
            "calls": {s: list(self.world.callees[s]) for s in self.world.services},
            "nodes": dict(self.world.nodes), "databases": dict(self.world.databases),
            "incidents": {i.id: i.to_json() for i in self.incidents},
        }


def schedule(count: int, start: datetime, duration: timedelta, rng: random.Random) -> list[datetime]:
    """Onsets spread over the run, leaving 30 minutes at the end for the fault to play out;
    every third incident starts while its predecessor is still going (overlap)."""
    usable = (duration - timedelta(minutes=35)).total_seconds()
    slot = usable / max(count, 1)
    onsets: list[datetime] = []
    for i in range(count):
        if i % 3 == 1:
            onsets.append(onsets[-1] + timedelta(seconds=rng.randint(90, 300)))
        else:
            onsets.append(start + timedelta(seconds=300 + i * slot + rng.uniform(0, slot * 0.3)))
    return [o.replace(microsecond=o.microsecond // 1000 * 1000) for o in onsets]


def _faults(
    world: World, count: int, start: datetime, duration: timedelta, rng: random.Random
) -> list[Fault]:
    kinds: list[FaultKind] = []
    while len(kinds) < count:
        kinds.extend(rng.sample(list(FaultKind), k=len(FaultKind)))
    faults: list[Fault] = []
    for i, onset in enumerate(schedule(count, start, duration, rng)):
        busy = [f.root for f in faults if abs((f.onset - onset).total_seconds()) < 30 * 60]
        root = choose_root(kinds[i], world, rng, busy)
        faults.append(Fault(f"sim-{i + 1:03d}-{kinds[i].value}", kinds[i], root, onset))
    return faults


Progress = Callable[[str, int, int], None]
"""``(stage, done, total)``: what :func:`simulate` is doing; ``total`` 0 means unknown."""
PROGRESS_EVERY = 5000


def _unique(events: Sequence[tuple[dict[str, Any], str | None]],
            progress: Progress | None = None) -> list[tuple[Event, str | None]]:
    """Validate every draft; an exact duplicate of an earlier draft gets an ``occurrence`` attribute."""
    out: list[tuple[Event, str | None]] = []
    seen: set[str] = set()
    for done, (payload, owner) in enumerate(events):
        if progress is not None and done % PROGRESS_EVERY == 0:
            progress("validating events", done, len(events))
        event = parse_event(payload)
        n = 1
        while event.id in seen:
            n += 1
            event = parse_event({**payload, "attributes": {**payload["attributes"], "occurrence": str(n)}})
        seen.add(event.id)
        out.append((event, owner))
    return out


def simulate(
    services: int, incidents: int, seed: int, start: datetime = DEFAULT_START,
    duration: timedelta = DEFAULT_DURATION, progress: Progress | None = None,
) -> tuple[list[Event], GroundTruth]:
    """Generate ``duration`` of traffic for ``services`` services with ``incidents`` injected faults.

    Returns the events ordered by (timestamp, id) and the ground truth.  ``progress``, when
    given, hears each stage and, while events are validated, how many are done (it does not
    change the result).  Raises
    ``ValueError`` for fewer than one service, a negative incident count, a naive
    ``start`` or a duration under 40 minutes.
    """
    if incidents < 0:
        raise ValueError("incidents must be ≥ 0")
    if start.tzinfo is None:
        raise ValueError("start needs a UTC offset")
    if duration < MIN_DURATION:
        raise ValueError(f"duration must be at least {MIN_DURATION}")
    rng = random.Random(seed)
    start = start.astimezone(UTC).replace(second=0, microsecond=0)
    world = build_world(services, rng)
    faults = _faults(world, incidents, start, duration, rng)
    drafts: list[tuple[dict[str, Any], str | None]] = []
    effects: list[MetricEffect] = []
    affected: dict[str, tuple[str, ...]] = {}
    for fault in faults:
        injection = GENERATORS[fault.kind](world, random.Random(f"{seed}/{fault.incident_id}"), fault)
        drafts.extend((d, fault.incident_id) for d in injection.drafts)
        effects.extend(injection.effects)
        affected[fault.incident_id] = injection.affected
    minutes = int(duration.total_seconds() // 60)
    if progress is not None:
        progress("generating background traffic", 0, 0)
    drafts.extend(background(world, random.Random(f"{seed}/background"), start, minutes, effects))
    validated = sorted(_unique(drafts, progress), key=lambda pair: (pair[0].timestamp, pair[0].id))
    truth = []
    for fault in faults:
        mine = [e for e, owner in validated if owner == fault.incident_id]
        truth.append(InjectedIncident(
            id=fault.incident_id, kind=fault.kind, root_cause=fault.root,
            affected=affected[fault.incident_id],
            sources=tuple(sorted({e.source.value for e in mine})), onset=mine[0].timestamp,
            end=mine[-1].timestamp, event_ids=tuple(e.id for e in mine),
        ))
    end = start + timedelta(minutes=minutes)
    return [e for e, _ in validated], GroundTruth(seed, start, end, world, tuple(truth))


def event_line(event: Event) -> str:
    """One JSONL line of the ingest contract, keys sorted, no optional fields left empty."""
    return json.dumps(event.model_dump(mode="json", exclude_none=True), sort_keys=True, ensure_ascii=False)


def write_simulation(events: Sequence[Event], truth: GroundTruth, out: Path, truth_path: Path) -> None:
    """Write ``events`` as JSONL to ``out`` and the ground truth to ``truth_path`` (overwriting both)."""
    with open(out, "w", encoding="utf-8", newline="\n") as fh:
        for event in events:
            fh.write(event_line(event) + "\n")
    truth_path.write_text(json.dumps(truth.to_json(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
