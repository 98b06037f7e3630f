"""Rolling windows: the order statistics are those of a sort of the window, bit for bit."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from models.rolling import RollingWindow


def _sorted_mad(values: list[float]) -> float:
    """The MAD by sorting every deviation (the definition)."""
    ordered = sorted(values)
    n = len(ordered)
    lo = (n - 1) // 2
    med = ordered[lo] if n % 2 else ordered[lo] + (ordered[lo + 1] - ordered[lo]) * 0.5
    deviations = sorted(abs(v - med) for v in ordered)
    mid = n // 2
    return deviations[mid] if n % 2 else 0.5 * (deviations[mid - 1] + deviations[mid])


@pytest.mark.parametrize("size", [2, 3, 4, 7, 64, 65, 400, 401])
def test_the_mad_equals_the_one_of_sorted_deviations(size: int) -> None:
    rng = random.Random(size)
    draws: list[Callable[[], float]] = [
        lambda: rng.gauss(100.0, 5.0),
        lambda: float(rng.randrange(4)),  # many ties
        lambda: rng.choice([0.0, -0.0, 5e-324, 1.0, 1e300, -1e300]),
        lambda: rng.expovariate(1.0) * rng.choice([1.0, -1.0, 1e10]),
        lambda: 1e9 + rng.random() * 1e-9,  # deviations below the values' precision
        lambda: 42.0,
    ]
    for draw in draws:
        window = RollingWindow(size)
        kept: list[float] = []
        for _ in range(2 * size + 3):
            value = draw()
            window.push(value)
            kept = [*kept, value][-size:]
            got, want = window.mad(), _sorted_mad(kept)
            assert got == want and repr(got) == repr(want)


def test_an_empty_window_has_no_deviation() -> None:
    assert RollingWindow(4).mad() == 0.0


@pytest.mark.parametrize("features", [None, ("a", "b")])
def test_the_robust_zscores_one_pass_path_equals_the_generic_one_bit_for_bit(
    features: tuple[str, ...] | None,
) -> None:
    """RobustZScore inlines robust_scale and the per-feature loop for speed: it must score and
    learn exactly as the generic RollingFeatureDetector path over its _feature_score does."""
    from models.robust_zscore import RobustZScore
    from models.rolling import RollingFeatureDetector

    fast = RobustZScore(window=40, features=features, min_samples=5, refresh=3)
    generic = RobustZScore(window=40, features=features, min_samples=5, refresh=3)
    rng = random.Random(7)
    for i in range(3000):
        x = {k: rng.choice([rng.gauss(10.0, 2.0), float(rng.randrange(3)), 1e9 if i % 97 == 0 else 0.5,
                            float("nan") if i % 53 == 0 else 1.0, float("inf") if i % 71 == 0 else -1.0])
             for k in ("a", "b", "c") if rng.random() < 0.8}
        assert fast.score_one(x) == RollingFeatureDetector.score_one(generic, x)
        fast.learn_one(x)
        RollingFeatureDetector.learn_one(generic, x)
    assert fast.to_state() == generic.to_state()
