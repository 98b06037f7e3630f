"""One check suite run over every detector (river ``checks`` style)."""

from __future__ import annotations

import importlib.util
import json
import math
import pickle
import random
from collections.abc import Callable

import pytest

from models.autoencoder import AutoEncoderDetector
from models.base import Detector, Features
from models.clusters import TemplateClusterDetector
from models.ensemble import Ensemble, Member
from models.hst import HSTDetector
from models.iforest import IsolationForestDetector
from models.iqr import IQRDetector
from models.robust_zscore import RobustZScore
from models.series import default_ensemble, relative_ensemble, shape_ensemble
from models.session import SessionInvariants
from models.shape import NearestWindow
from models.state import StateError


def _small_ensemble(seed: int) -> Ensemble:
    members = {
        "z": Member(RobustZScore(window=64, min_samples=8, seed=seed)),
        "iqr": Member(IQRDetector(window=64, min_samples=8, seed=seed), weight=0.5),
        "hst": Member(HSTDetector(n_trees=3, height=4, window_size=20, seed=seed)),
    }
    return Ensemble(members, probation=10, seed=seed)


FACTORIES: dict[str, Callable[[int], Detector]] = {
    "robust_zscore": lambda seed: RobustZScore(window=64, min_samples=8, seed=seed),
    "iqr": lambda seed: IQRDetector(window=64, min_samples=8, seed=seed),
    "hst": lambda seed: HSTDetector(n_trees=3, height=4, window_size=20, seed=seed),
    "ensemble": _small_ensemble,
    "default_ensemble": default_ensemble,
    "shape_ensemble": shape_ensemble,
    "relative_ensemble": relative_ensemble,
    "session_invariants": lambda seed: SessionInvariants(min_samples=10, seed=seed),
    # micro-batch detectors, refit every few points so the streams below refit several times
    "iforest": lambda seed: IsolationForestDetector(
        n_estimators=20, window=64, min_samples=16, refit_every=16, seed=seed
    ),
    "autoencoder": lambda seed: AutoEncoderDetector(
        hidden=8, latent=2, epochs=3, window=64, min_samples=16, refit_every=32, seed=seed
    ),
    "nearest_window": lambda seed: NearestWindow(length=4, bank=40, min_windows=10, feature="a", seed=seed),
    "template_clusters": lambda seed: TemplateClusterDetector(
        window=100, refit_every=20, min_cluster_size=3, seed=seed
    ),
}
ENSEMBLES = {"ensemble", "default_ensemble", "shape_ensemble", "relative_ensemble"}
# torch is the optional ``deep`` extra: CI runs without it, so these detectors cannot learn there.
NEEDS_TORCH = {"autoencoder"}
HAVE_TORCH = importlib.util.find_spec("torch") is not None


def _stream(n: int, seed: int = 7) -> list[Features]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        x: Features = {"a": 10.0 + rng.gauss(0.0, 1.0), "b": float(i % 5)}
        if i % 3 == 0:
            x["c"] = rng.random()
        if i == 150:
            x["a"] = 80.0
        out.append(x)
    return out


def _run(detector: Detector, stream: list[Features]) -> list[float]:
    scores = []
    for x in stream:
        scores.append(detector.score_one(x))
        detector.learn_one(x)
    return scores


def _param(name: str) -> object:
    skip = pytest.mark.skipif(
        name in NEEDS_TORCH and not HAVE_TORCH, reason="torch is not installed (optional extra: deep)"
    )
    return pytest.param(name, marks=skip)


@pytest.fixture(params=[_param(n) for n in sorted(FACTORIES)])
def name(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


def test_a_detector_satisfies_the_detector_protocol(name: str) -> None:
    assert isinstance(FACTORIES[name](0), Detector)


def test_the_same_seed_gives_the_same_scores(name: str) -> None:
    stream = _stream(220)
    assert _run(FACTORIES[name](3), stream) == _run(FACTORIES[name](3), stream)


def test_every_score_is_finite_and_ensemble_scores_lie_in_the_unit_interval(name: str) -> None:
    scores = _run(FACTORIES[name](0), _stream(220))
    assert all(math.isfinite(s) for s in scores)
    if name in ENSEMBLES:
        assert all(0.0 <= s <= 1.0 for s in scores)


def test_a_restored_state_continues_exactly_like_the_original(name: str) -> None:
    stream = _stream(240)
    original = FACTORIES[name](1)
    _run(original, stream[:120])
    restored = FACTORIES[name](1)
    restored.load_state(original.save_state())
    assert _run(restored, stream[120:]) == _run(original, stream[120:])


def test_a_pickled_detector_continues_exactly_like_the_original(name: str) -> None:
    stream = _stream(240)
    original = FACTORIES[name](2)
    _run(original, stream[:120])
    clone = pickle.loads(pickle.dumps(original))
    assert _run(clone, stream[120:]) == _run(original, stream[120:])


def test_features_appearing_and_disappearing_do_not_break_scoring(name: str) -> None:
    detector = FACTORIES[name](0)
    stream: list[Features] = [{}, {"only": 1.0}, {}, {"a": 1.0, "new": 2.0}]
    stream += [{"a": float(i)} if i % 2 else {"z": float(i)} for i in range(60)]
    for x in stream:
        assert math.isfinite(detector.score_one(x))
        detector.learn_one(x)


def test_scoring_does_not_change_the_learned_state(name: str) -> None:
    detector = FACTORIES[name](0)
    _run(detector, _stream(120))
    before = detector.save_state()
    detector.score_one({"a": 1e6, "b": -3.0})
    assert detector.save_state() == before
    assert _run(detector, _stream(30, seed=9)) == _run(_restored(name, before), _stream(30, seed=9))


def test_a_saved_state_is_a_versioned_json_document_named_by_format_not_by_class(name: str) -> None:
    detector = FACTORIES[name](0)
    _run(detector, _stream(120))
    doc = json.loads(detector.save_state())
    assert set(doc) == {"format", "version", "state"}
    assert doc["format"].startswith("seismo.") and type(detector).__name__ not in doc["format"]
    assert isinstance(doc["version"], int)


def test_a_state_restores_into_a_renamed_subclass(name: str) -> None:
    original = FACTORIES[name](4)
    _run(original, _stream(120))
    renamed = type("Renamed", (type(original),), {})
    clone = FACTORIES[name](4)
    clone.__class__ = renamed
    clone.load_state(original.save_state())
    assert _run(clone, _stream(30, seed=5)) == _run(original, _stream(30, seed=5))


def test_a_state_of_another_format_is_refused_and_nothing_is_changed_by_a_refusal_of_the_envelope(
    name: str,
) -> None:
    detector = FACTORIES[name](0)
    other = RobustZScore() if name != "robust_zscore" else IQRDetector()
    before = detector.save_state()
    with pytest.raises(StateError, match="expected"):
        detector.load_state(other.save_state())
    assert detector.save_state() == before


def _restored(name: str, state: bytes) -> Detector:
    detector = FACTORIES[name](0)
    detector.load_state(state)
    return detector
