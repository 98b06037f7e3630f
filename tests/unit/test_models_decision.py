"""The decision rule: online and replayed decisions agree, probation, cooldown, state."""

from __future__ import annotations

import itertools
import json
import random

import pytest

from models.decision import DecisionParams, ThresholdDecision, past_quantiles, relative_score, replay
from models.series import default_ensemble
from models.state import StateError


def _scores(n: int, seed: int = 5) -> list[float]:
    rng = random.Random(seed)
    out = [min(1.0, abs(rng.gauss(0.2, 0.1))) for _ in range(n)]
    for i in range(300, n, 170):
        out[i] = 0.9
    return out


@pytest.mark.parametrize(
    "params",
    [
        DecisionParams(),
        DecisionParams(quantile=0.999, window=500, margin=0.7, cooldown=25),
        DecisionParams(quantile=1.0, margin=1.0, min_threshold=0.3, probation=10, cooldown=0),
        DecisionParams(relative=True),
        DecisionParams(quantile=0.98, margin=0.9, cooldown=200, relative=True),
    ],
)
def test_replaying_recorded_scores_decides_exactly_like_the_online_rule(params: DecisionParams) -> None:
    scores = _scores(1500)
    online = ThresholdDecision(params)
    decisions = [online.decide(s) for s in scores]
    flags, reported = replay(scores, past_quantiles(scores, params.quantile, params.window), params)
    assert flags == [d.is_anomaly for d in decisions]
    assert reported == [d.reported for d in decisions]
    assert any(flags)


def test_nothing_is_flagged_during_probation_and_a_flag_quiets_the_next_cooldown_points() -> None:
    params = DecisionParams(probation=100, cooldown=30, damping=0.5)
    rule = ThresholdDecision(params, min_samples=10)
    decisions = [rule.decide(0.99) for _ in range(200)]
    flagged = [i for i, d in enumerate(decisions) if d.is_anomaly]
    assert flagged[0] == 100
    assert all(b - a == 31 for a, b in itertools.pairwise(flagged))
    assert decisions[100].reported == 0.99
    assert decisions[101].reported == pytest.approx(0.495)
    assert all(d.in_probation for d in decisions[:100])
    assert decisions[50].reported == 0.99  # the likelihood is damped only while quiet


def test_a_restored_rule_continues_exactly_like_the_original() -> None:
    scores = _scores(900)
    original = ThresholdDecision(DecisionParams(cooldown=40))
    for s in scores[:450]:
        original.decide(s)
    restored = ThresholdDecision(DecisionParams(cooldown=40))
    restored.load_state(original.save_state())
    assert [restored.decide(s) for s in scores[450:]] == [original.decide(s) for s in scores[450:]]


def test_the_ensemble_keeps_its_saved_layout_so_existing_states_still_load() -> None:
    model = default_ensemble(0)
    for i in range(200):
        model.learn_one({"value": float(i % 7)})
    doc = json.loads(model.save_state())
    assert doc["version"] == 1
    assert set(doc["state"]) == {"members", "calibrators", "filter", "seen", "quiet_until"}
    assert model.decision_params.cooldown == 100


@pytest.mark.parametrize(
    "state",
    [b"not json", b'{"format":"seismo.threshold_decision","version":1,"state":{"seen":"x"}}',
     b'{"format":"seismo.ensemble","version":1,"state":{}}'],
)
def test_a_state_that_is_not_a_decision_rule_is_refused(state: bytes) -> None:
    with pytest.raises(StateError):
        ThresholdDecision().load_state(state)


def test_a_relative_score_is_one_half_at_the_threshold_and_damped_in_probation() -> None:
    early = ThresholdDecision(DecisionParams(probation=100, relative=True), min_samples=10)
    first = [early.decide(0.99) for _ in range(20)][-1]
    assert first.in_probation
    assert first.reported == pytest.approx(0.5 * 0.99 / (0.99 + first.threshold))
    rule = ThresholdDecision(DecisionParams(probation=0, cooldown=0, relative=True), min_samples=10)
    for _ in range(50):
        rule.decide(0.2)
    threshold = rule.threshold()
    assert rule.decide(threshold).reported == pytest.approx(0.5)
    assert relative_score(0.0, 0.0) == 0.0
