"""Whatever sits in a saved state, restoring it never runs code: it is refused and logged."""

from __future__ import annotations

import base64
import json
import logging
import os
import pickle
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from models.autoencoder import AutoEncoderDetector
from models.series import MetricDetector
from models.state import StateError
from stream_processors.score.scorer import Scorer, ServiceScore

T0 = datetime(2024, 6, 3, tzinfo=UTC)


class _Payload:
    """Unpickling this creates ``marker``: proof that a blob ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.mkdir, (str(self.marker),)


def _points(n: int, seed: int = 3) -> list[tuple[datetime, float]]:
    rng = random.Random(seed)
    return [(T0 + timedelta(minutes=i), 100.0 + rng.gauss(0.0, 3.0)) for i in range(n)]


def _scores(detector: MetricDetector, points: list[tuple[datetime, float]]) -> list[float]:
    return [detector.process(t, v).score for t, v in points]


def _saved_state(metric_doc: object) -> dict[str, Any]:
    """A score state of service ``api`` whose one metric detector is ``metric_doc``."""
    scorer = Scorer()
    state = scorer.new_state("api")
    state.detector("latency", 0).process(T0, 1.0)
    state.metric_last_us["latency"] = 1
    data = state.to_json()
    data["metrics"]["latency"][1] = metric_doc
    return data


def _restored_detector(data: dict[str, Any]) -> ServiceScore:
    state = Scorer().load(data, service="api")
    state.detector("latency", 0)
    return state


def test_a_pickle_that_would_run_code_is_refused_by_a_detector(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    blob = pickle.dumps(_Payload(marker))
    with pytest.raises(StateError, match="not JSON"):
        MetricDetector().load_state(blob)
    assert not marker.exists()


@pytest.mark.parametrize("legacy", [False, True], ids=["as the document", "in the retired format"])
def test_a_pickled_detector_in_a_saved_score_state_is_not_run_and_the_series_starts_afresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, legacy: bool
) -> None:
    marker = tmp_path / "ran"
    blob = base64.b64encode(pickle.dumps(_Payload(marker))).decode("ascii")
    data = _saved_state(blob)
    if legacy:  # version 1 states held base64 pickles and no format field
        del data["format"], data["format_version"]
    with caplog.at_level(logging.WARNING):
        state = _restored_detector(data)
    assert not marker.exists()
    assert "pickle" in caplog.text if legacy else "unusable" in caplog.text
    points = _points(60)
    assert _scores(state.detector("latency", 0), points) == _scores(MetricDetector(), points)


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ("garbage", "JSON object"),
        ({"format": "seismo.metric_detector", "version": 1, "state": {"featurizer": "x"}}, "JSON object"),
        ({"format": "seismo.metric_detector", "version": 99, "state": {}}, "newer than this code"),
        ({"format": "seismo.metric_detector", "version": 0, "state": {}}, "no migration"),
        ({"format": "builtins.eval", "version": 1, "state": {}}, "found format"),
        ({"format": "seismo.metric_detector", "version": 1, "state": {"featurizer": {}}}, "expected"),
    ],
    ids=["a string", "a wrong layout", "a newer version", "an unknown old version", "another format",
         "an empty part"],
)
def test_a_detector_document_that_cannot_be_restored_is_logged_and_the_series_starts_afresh(
    doc: object, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        state = _restored_detector(_saved_state(doc))
    assert "latency" in caplog.text and reason in caplog.text
    points = _points(60)
    assert _scores(state.detector("latency", 0), points) == _scores(MetricDetector(), points)


def test_a_window_longer_than_the_detector_allows_is_refused() -> None:
    detector = MetricDetector()
    _scores(detector, _points(30))
    doc = detector.to_state()
    level = doc["state"]["ensemble"]["state"]["members"]["level"]["state"]["windows"]["value"]
    level["values"] = (b"\0" * 8 * 401).hex()
    with pytest.raises(StateError, match="cannot hold 401"):
        MetricDetector().from_state(doc)


@pytest.mark.parametrize(
    "data",
    [{"nonsense": 1}, {"format": "seismo.score_service", "format_version": 7}, ["not", "an", "object"]],
    ids=["missing fields", "a newer version", "not an object"],
)
def test_a_score_state_that_cannot_be_read_gives_a_fresh_state_and_an_error(
    data: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        state = Scorer().load(data, service="api")
    assert state.service == "api" and state.version == 0
    assert "unusable" in caplog.text


def test_a_score_state_filed_under_another_service_is_not_adopted(caplog: pytest.LogCaptureFixture) -> None:
    data = Scorer().new_state("billing").to_json()
    with caplog.at_level(logging.ERROR):
        state = Scorer().load(data, service="api")
    assert state.service == "api" and "billing" in caplog.text


def test_a_restored_score_state_scores_exactly_like_one_that_never_left_memory() -> None:
    scorer = Scorer()
    state = scorer.new_state("api")
    points = _points(400)
    _scores(state.detector("latency", 0), points[:300])
    state.metric_last_us["latency"] = 1  # what Scorer.apply records with each point
    restored = scorer.load(json.loads(json.dumps(state.to_json())), service="api")
    assert _scores(restored.detector("latency", 0), points[300:]) == _scores(
        state.detector("latency", 0), points[300:]
    )


def test_an_autoencoder_state_round_trips_without_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    # training replaced by "keep the initial weights": the fitted parameters are then
    # known numbers, and torch is never imported
    monkeypatch.setattr("models.autoencoder.train", lambda layers, *args: layers)
    monkeypatch.setitem(sys.modules, "torch", None)
    rng = random.Random(1)
    stream = [{"a": rng.gauss(0, 1), "b": rng.gauss(5, 2)} for _ in range(100)]
    original = AutoEncoderDetector(hidden=4, latent=1, window=32, min_samples=16, refit_every=200)
    for x in stream[:40]:
        original.learn_one(x)
    restored = AutoEncoderDetector(hidden=4, latent=1, window=32, min_samples=16, refit_every=200)
    restored.load_state(original.save_state())
    assert original.fits == restored.fits == 1
    assert [restored.score_one(x) for x in stream[40:]] == [original.score_one(x) for x in stream[40:]]
