"""The state format itself: envelopes, migrations, packed numbers, and checks on what is restored."""

from __future__ import annotations

import json
import random
from typing import ClassVar

import pytest

from models.iforest import IsolationForestDetector
from models.state import DataState, Document, Migration, StateError, pack, unpack, unpack_matrix


class _Counter(DataState):
    """Version 3 of a toy layout: version 1 called the count ``n``; version 2 added ``seen``."""

    STATE_FORMAT = "seismo.test_counter"
    STATE_VERSION = 3
    STATE_MIGRATIONS: ClassVar[dict[int, Migration]] = {
        1: lambda s: {"count": s["n"]},
        2: lambda s: {**s, "seen": []},
    }

    def __init__(self) -> None:
        self.count = 0
        self.seen: list[str] = []

    def _dump_state(self) -> Document:
        return {"count": self.count, "seen": self.seen}

    def _load_state(self, state: Document) -> None:
        self.count, self.seen = int(state["count"]), list(state["seen"])


def test_an_old_state_is_migrated_one_version_at_a_time() -> None:
    counter = _Counter()
    old = {"format": "seismo.test_counter", "version": 1, "state": {"n": 5}}
    counter.load_state(json.dumps(old).encode())
    assert (counter.count, counter.seen) == (5, [])
    assert json.loads(counter.save_state())["version"] == 3


def test_a_version_without_a_migration_is_refused() -> None:
    class Strict(_Counter):
        STATE_MIGRATIONS: ClassVar[dict[int, Migration]] = {2: _Counter.STATE_MIGRATIONS[2]}

    with pytest.raises(StateError, match=r"no migration .* from version 1"):
        Strict().from_state({"format": "seismo.test_counter", "version": 1, "state": {"n": 5}})


def test_packed_doubles_round_trip_exactly_and_anything_else_is_refused() -> None:
    values = [0.1, -0.0, 1e308, 5e-324, 123456.789]
    assert unpack(pack(values)).tolist() == values
    for bad in ("zz", "abc", 12, ["00"]):
        with pytest.raises(StateError):
            unpack(bad)
    with pytest.raises(StateError, match="shape"):
        unpack_matrix({"shape": [2, 3], "data": pack([1.0] * 5)}, 2)


def test_a_forest_whose_nodes_point_outside_it_is_refused() -> None:
    rng = random.Random(2)
    detector = IsolationForestDetector(n_estimators=5, window=32, min_samples=16, refit_every=64)
    for _ in range(20):
        detector.learn_one({"a": rng.gauss(0, 1), "b": rng.gauss(0, 1)})
    doc = detector.to_state()
    forest = doc["state"]["model"]["forest"]
    left = unpack(forest["left"])
    left[0] = 10**6
    forest["left"] = pack(left)
    with pytest.raises(StateError, match="outside the forest"):
        IsolationForestDetector(n_estimators=5, window=32, min_samples=16, refit_every=64).from_state(doc)
