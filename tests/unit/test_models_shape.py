"""The contextual novelty member: a shape seen before scores low, a new one high."""

from __future__ import annotations

import math
import random

import pytest

from models.shape import NearestWindow
from models.state import StateError


def _learn(model: NearestWindow, values: list[float]) -> None:
    for v in values:
        model.learn_one({"value": v})


def _wave(n: int) -> list[float]:
    return [10.0 * math.sin(2 * math.pi * i / 24) for i in range(n)]


def test_a_repeating_shape_scores_near_zero_and_a_new_one_scores_high() -> None:
    model = NearestWindow(length=8, bank=200, min_windows=20)
    _learn(model, _wave(300))
    assert model.score_one({"value": 10.0 * math.sin(2 * math.pi * 300 / 24)}) < 1e-6
    # every value stays inside the usual range, but the rhythm breaks: held flat at a peak value
    _learn(model, [10.0] * 4)
    assert model.score_one({"value": 10.0}) > 1.0


def test_nothing_is_scored_before_min_windows_earlier_windows_exist() -> None:
    model = NearestWindow(length=8, bank=100, min_windows=50)
    _learn(model, _wave(8 + 8 + 48 - 2))  # 48 earlier windows
    assert model.score_one({"value": 99.0}) == 0.0
    _learn(model, _wave(2))
    assert model.score_one({"value": 99.0}) > 0.0


def test_only_the_last_bank_windows_are_kept() -> None:
    model = NearestWindow(length=4, bank=10, min_windows=5)
    _learn(model, [float(i) for i in range(100)])
    assert len(model._values) == model.capacity == 10 + 2 * 4 - 2


def test_a_point_without_the_feature_is_neither_scored_nor_learned() -> None:
    model = NearestWindow(length=4, bank=10, min_windows=5)
    model.learn_one({"other": 1.0})
    model.learn_one({"value": float("nan")})
    assert model.score_one({"other": 1.0}) == 0.0
    assert len(model._values) == 0


@pytest.mark.parametrize(
    "values", ["00" * 8 * 100, "000000000000f87f"]  # too many values; a NaN
)
def test_a_saved_state_that_does_not_fit_is_refused(values: str) -> None:
    doc = f'{{"format":"seismo.nearest_window","version":1,"state":{{"values":"{values}"}}}}'
    with pytest.raises(StateError):
        NearestWindow(length=4, bank=10, min_windows=5).load_state(doc.encode())


def test_the_streaming_profile_matches_a_brute_force_search_at_every_point() -> None:
    rng = random.Random(4)
    model = NearestWindow(length=8, bank=60, min_windows=5)
    values = [1e3 + 10.0 * math.sin(i / 5) + rng.gauss(0.0, 1.0) for i in range(400)]
    for i, v in enumerate(values):
        seen = values[max(0, i - model.capacity) : i]
        query = [*seen[-7:], v]
        earlier = [seen[e - 8 : e] for e in range(8, len(seen) - 6)]
        if len(earlier) >= 5:
            best = min(sum((a - b) ** 2 for a, b in zip(w, query, strict=True)) for w in earlier)
            assert model.score_one({"value": v}) == pytest.approx(math.sqrt(best / 8), abs=1e-9)
        model.learn_one({"value": v})
