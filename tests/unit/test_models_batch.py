"""Behaviour of the micro-batch detectors: isolation forest, autoencoder, template clusters."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from models.autoencoder import AutoEncoderDetector
from models.base import Features
from models.clusters import TemplateClusterDetector, embedding_features
from models.iforest import IsolationForestDetector, PackedForest


def _gaussian(n: int, seed: int) -> list[Features]:
    rng = np.random.default_rng(seed)
    return [{"a": float(a), "b": float(b)} for a, b in rng.normal(size=(n, 2))]


def _learn(detector: IsolationForestDetector | AutoEncoderDetector, stream: list[Features]) -> None:
    for x in stream:
        detector.learn_one(x)


# --- isolation forest -------------------------------------------------------------------


@pytest.mark.parametrize("max_features", [1.0, 0.5])
def test_the_packed_forest_scores_exactly_like_pyod(max_features: float) -> None:
    from pyod.models.iforest import IForest

    rng = np.random.default_rng(0)
    train = rng.normal(size=(300, 4))
    model = IForest(n_estimators=30, max_samples=128, max_features=max_features, random_state=1).fit(train)
    queries = 3.0 * rng.normal(size=(200, 4))
    expected = model.decision_function(queries) - model.offset_  # s(x) of Liu et al.
    np.testing.assert_allclose(PackedForest(model.detector_).score(queries), expected, rtol=0, atol=1e-12)


def test_the_forest_is_fit_at_min_samples_then_every_refit_every_points() -> None:
    detector = IsolationForestDetector(n_estimators=10, window=64, min_samples=20, refit_every=10)
    stream = _gaussian(45, seed=1)
    _learn(detector, stream[:19])
    assert detector.fits == 0
    assert detector.score_one({"a": 50.0, "b": 50.0}) == 0.0
    _learn(detector, stream[19:45])
    assert detector.fits == 3  # at 20, 30 and 40 points


def test_the_forest_scores_an_obvious_outlier_above_every_inlier() -> None:
    detector = IsolationForestDetector(window=256, min_samples=128, refit_every=128)
    _learn(detector, _gaussian(128, seed=2))
    inliers = [detector.score_one(x) for x in _gaussian(50, seed=3)]
    outlier = detector.score_one({"a": 8.0, "b": -8.0})
    assert outlier > max(inliers)
    assert outlier > 0.5 > float(np.median(inliers))  # the paper's reading of s(x)


def test_a_feature_gone_from_the_window_loses_its_column_at_the_next_refit() -> None:
    detector = IsolationForestDetector(n_estimators=5, window=20, min_samples=10, refit_every=10)
    _learn(detector, [{"old": 1.0, "a": float(i)} for i in range(10)])
    assert detector.columns == ("old", "a")
    _learn(detector, [{"a": float(i), "new": 2.0} for i in range(20)])
    assert detector.columns == ("a", "new")


def test_the_seed_chooses_the_forest() -> None:
    stream, probe = _gaussian(64, seed=4), _gaussian(20, seed=5)
    scores = []
    for seed in (0, 0, 1):
        detector = IsolationForestDetector(n_estimators=10, min_samples=64, seed=seed)
        _learn(detector, stream)
        scores.append([detector.score_one(x) for x in probe])
    assert scores[0] == scores[1] != scores[2]


# --- autoencoder ------------------------------------------------------------------------


def test_importing_the_models_package_does_not_import_torch() -> None:
    code = "import sys, models, models.autoencoder; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def _correlated(n: int, seed: int) -> list[Features]:
    rng = np.random.default_rng(seed)
    t, noise = rng.normal(size=n), 0.05 * rng.normal(size=(n, 2))
    rows = zip(t, noise, strict=True)
    return [{"a": float(v), "b": float(2.0 * v + e), "c": float(-v + f)} for v, (e, f) in rows]


def test_the_autoencoder_scores_a_point_off_the_learned_relation_above_the_inliers() -> None:
    pytest.importorskip("torch", reason="torch is not installed (optional extra: deep)")
    detector = AutoEncoderDetector(epochs=100, window=256, min_samples=256, refit_every=256)
    _learn(detector, _correlated(256, seed=1))
    inliers = [detector.score_one(x) for x in _correlated(50, seed=2)]
    # every coordinate is within the usual range; only b = 2a and c = -a are broken
    outlier = detector.score_one({"a": 1.0, "b": -2.0, "c": 1.0})
    assert all(0.0 <= s <= 1.0 for s in inliers)
    assert outlier == 1.0  # reconstructed worse than every training point
    assert float(np.median(inliers)) < 0.9


def test_a_trained_autoencoder_scores_and_round_trips_without_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch", reason="torch is not installed (optional extra: deep)")
    detector = AutoEncoderDetector(epochs=5, window=64, min_samples=32, refit_every=64)
    _learn(detector, _correlated(32, seed=3))
    probe = _correlated(10, seed=4)
    expected = [detector.score_one(x) for x in probe]
    monkeypatch.setitem(sys.modules, "torch", None)  # any `import torch` now fails
    restored = AutoEncoderDetector()
    restored.load_state(detector.save_state())
    restored.learn_one(probe[0])  # no refit due: needs no torch
    assert [restored.score_one(x) for x in probe] == expected


def test_autoencoder_training_leaves_torch_s_global_random_state_alone() -> None:
    torch = pytest.importorskip("torch", reason="torch is not installed (optional extra: deep)")
    before = torch.random.get_rng_state()
    detector = AutoEncoderDetector(epochs=2, window=64, min_samples=32, refit_every=64)
    _learn(detector, _correlated(32, seed=5))
    assert detector.fits == 1
    assert torch.equal(torch.random.get_rng_state(), before)


# --- template clusters ------------------------------------------------------------------

DIM = 32


def _directions(n: int, rng: np.random.Generator) -> np.ndarray:
    centres = rng.normal(size=(n, DIM))
    return centres / np.linalg.norm(centres, axis=1, keepdims=True)


def _near(centre: np.ndarray, n: int, rng: np.random.Generator, spread: float = 0.05) -> list[np.ndarray]:
    return [centre + spread * rng.normal(size=DIM) / np.sqrt(DIM) for _ in range(n)]


def test_a_group_of_new_similar_templates_is_reported_as_a_new_pattern_cluster() -> None:
    rng = np.random.default_rng(0)
    old_a, old_b, old_c, fresh = _directions(4, rng)
    detector = TemplateClusterDetector(refit_every=30, min_cluster_size=5)
    for vector in _near(old_a, 10, rng) + _near(old_b, 10, rng) + _near(old_c, 10, rng):
        detector.learn_vector(vector)
    assert detector.fits == 1
    assert len(detector.clusters) == 3
    assert detector.new_pattern_clusters() == []  # the first refit is the baseline
    # the next batch: 10 templates of a new family, 20 more of the old ones
    batch = _near(fresh, 10, rng) + _near(old_a, 10, rng) + _near(old_b, 10, rng)
    for vector in batch:
        detector.learn_vector(vector)
    assert detector.fits == 2
    [new] = detector.new_pattern_clusters()
    assert new.members == tuple(range(30, 40))  # exactly the new family, by first-seen number
    old = [c for c in detector.clusters if not c.new]
    assert len(old) == 3
    assert new.novelty > max(c.novelty for c in old)


def test_a_template_near_a_known_cluster_scores_low_and_a_far_one_high() -> None:
    rng = np.random.default_rng(1)
    known, other, far = _directions(3, rng)
    detector = TemplateClusterDetector(refit_every=20, min_cluster_size=5)
    learned = _near(known, 10, rng) + _near(other, 10, rng)
    for vector in learned:
        detector.learn_vector(vector)
    near = detector.score_vector(_near(known, 1, rng)[0])
    assert near < detector.score_vector(far)
    assert detector.score_vector(learned[3]) == 0.0  # an exact known template
    assert near < 0.1 < detector.score_vector(far)


def test_a_template_seen_again_is_not_learned_twice() -> None:
    detector = TemplateClusterDetector(refit_every=6, min_cluster_size=2)
    vector = np.ones(DIM)
    for scale in (1.0, 1.0, 4.0):  # same direction, so the same template
        detector.learn_vector(scale * vector)
    detector.learn_vector(np.zeros(DIM))  # no direction: ignored
    state = detector.save_state()
    restored = TemplateClusterDetector(refit_every=6, min_cluster_size=2)
    restored.load_state(state)
    assert restored.score_vector(vector) == 0.0
    assert restored.n_templates == 1


def test_the_dict_and_the_vector_api_agree() -> None:
    rng = np.random.default_rng(2)
    by_vector = TemplateClusterDetector(refit_every=10, min_cluster_size=3)
    by_dict = TemplateClusterDetector(refit_every=10, min_cluster_size=3)
    vectors = [v for c in _directions(3, rng) for v in _near(c, 6, rng)]
    for vector in vectors:
        by_vector.learn_vector(vector)
        by_dict.learn_one(embedding_features(vector))
    probes = _directions(5, rng)
    from_dicts = [by_dict.score_one(embedding_features(p)) for p in probes]
    assert [by_vector.score_vector(p) for p in probes] == from_dicts
    assert by_dict.fits == 1
