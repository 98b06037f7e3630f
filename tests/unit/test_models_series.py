"""Behaviour of the one-pass metric-series scorer behind ``seismo detect``."""

from __future__ import annotations

import io
import math
import random
from datetime import datetime, timedelta

import pytest

from models.series import MetricDetector, ScoredPoint, score_series, shape_ensemble, write_scored_csv
from models.state import StateError

START = datetime(2024, 1, 1)
STEP = timedelta(minutes=5)


def _daily(n: int, spike_at: int | None = None, seed: int = 0) -> list[tuple[datetime, float]]:
    rng = random.Random(seed)
    points = []
    for i in range(n):
        stamp = START + i * STEP
        value = 50.0 + 10.0 * math.sin(2 * math.pi * i / 288) + rng.gauss(0.0, 1.0)
        if i == spike_at:
            value += 60.0
        points.append((stamp, value))
    return points


def test_a_spike_in_a_noisy_daily_series_is_flagged_at_the_spike() -> None:
    rows = list(score_series(_daily(2000, spike_at=1500)))
    flagged = [i for i, row in enumerate(rows) if row.is_anomaly]
    assert 1500 in flagged
    assert rows[1500].explanation is not None
    assert "value" in rows[1500].explanation.features
    peak = max(range(len(rows)), key=lambda i: rows[i].score)
    assert 1500 <= peak <= 1510  # the likelihood averages the last 10 raw scores
    assert flagged == [1500]


def test_a_flat_series_produces_no_anomalies() -> None:
    rows = list(score_series((START + i * STEP, 42.0) for i in range(1500)))
    assert not any(row.is_anomaly for row in rows)
    assert all(math.isfinite(row.score) for row in rows)


def test_scores_of_a_prefix_do_not_change_when_more_data_is_appended() -> None:
    series = _daily(900, spike_at=700)
    prefix = list(score_series(series[:600]))
    full = list(score_series(series))
    assert [(r.score, r.is_anomaly) for r in full[:600]] == [(r.score, r.is_anomaly) for r in prefix]


def test_a_restored_series_detector_continues_identically() -> None:
    series = _daily(800, spike_at=650)
    original = MetricDetector(seed=0)
    for stamp, value in series[:400]:
        original.process(stamp, value)
    restored = MetricDetector(seed=0)
    restored.load_state(original.save_state())
    tail = series[400:]
    assert [restored.process(*p).score for p in tail] == [original.process(*p).score for p in tail]


def test_scored_rows_are_written_as_timestamp_value_score_is_anomaly() -> None:
    out = io.StringIO()
    write_scored_csv([ScoredPoint(START, 1.5, 0.25, True)], out)
    assert out.getvalue().splitlines() == [
        "timestamp,value,score,is_anomaly",
        "2024-01-01 00:00:00,1.5,0.250000,1",
    ]


def test_a_flagged_point_scores_at_least_one_half_and_no_quiet_point_reaches_it() -> None:
    rows = list(score_series(_daily(3000, spike_at=2500, seed=4)))
    flagged = [i for i, row in enumerate(rows) if row.is_anomaly]
    assert flagged
    assert all(rows[i].score >= 0.5 for i in flagged)
    quiet = {j for i in flagged for j in range(i + 1, i + 101)}
    assert all(rows[j].score < 0.5 for j in quiet if j < len(rows))


def test_the_shape_ensemble_is_opt_in_and_its_state_stays_its_own() -> None:
    series = _daily(1400, spike_at=1300)
    original = MetricDetector(seed=0, ensemble=shape_ensemble)
    for stamp, value in series[:700]:
        original.process(stamp, value)
    restored = MetricDetector(seed=0, ensemble=shape_ensemble)
    restored.load_state(original.save_state())
    tail = series[700:]
    assert [restored.process(*p).score for p in tail] == [original.process(*p).score for p in tail]
    with pytest.raises(StateError):
        MetricDetector(seed=0).load_state(original.save_state())
