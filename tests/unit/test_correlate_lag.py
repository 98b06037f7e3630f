"""The Granger-style lag test of the root-cause ranker: whose symptom rate leads whose."""

from __future__ import annotations

import random

import pytest

from stream_processors.correlate import rank as ranking
from stream_processors.correlate.incident_state import IncidentState, ServiceFacts
from stream_processors.correlate.topology import Topology

US = 1_000_000
T0 = 1_715_000_000 * US


def incident(bursts: list[int], lag_s: int, leader: str, follower: str, seed: int = 1) -> IncidentState:
    """Error bursts of ``leader`` at ``bursts`` (seconds), each echoed by ``follower`` ``lag_s`` later."""
    rng = random.Random(seed)
    rows = []
    for b in bursts:
        for k in range(rng.randint(3, 6)):
            first, echo = T0 + (b + rng.randint(0, 8)) * US, T0 + (b + lag_s + rng.randint(0, 8)) * US
            rows.append([first, f"{leader}-{b}-{k}", "kubernetes", "log", leader, 3, "x"])
            rows.append([echo, f"{follower}-{b}-{k}", "kubernetes", "log", follower, 3, "y"])
    rows.sort(key=lambda r: (r[0], r[1]))
    return IncidentState(id="inc-1", opened_us=T0, detected_us=T0, last_us=int(rows[-1][0]), evidence=rows)


def test_the_service_whose_bursts_come_first_leads_the_one_that_echoes_them() -> None:
    inc = incident([0, 90, 200, 330, 420, 560], lag_s=20, leader="db", follower="api")
    leads = ranking.lead_lag(inc)
    assert list(leads) == ["db"]
    [(other, lag, margin)] = leads["db"]
    assert other == "api" and 10 <= lag <= 30 and margin >= ranking.LAG_MARGIN
    swapped = ranking.lead_lag(incident([0, 90, 200, 330, 420, 560], lag_s=20, leader="api", follower="db"))
    assert list(swapped) == ["api"]


def test_services_with_too_few_symptoms_or_no_echo_are_not_said_to_lead() -> None:
    assert ranking.lead_lag(incident([0], lag_s=20, leader="db", follower="api")) == {}
    together = incident([0, 90, 200, 330, 420, 560], lag_s=0, leader="db", follower="api")
    assert ranking.lead_lag(together) == {}
    assert ranking.lead_lag(IncidentState(id="i", opened_us=T0, detected_us=T0, last_us=T0)) == {}


def test_with_a_lead_weight_the_reason_names_the_lag_and_the_leader_gains(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    inc = incident([0, 90, 200, 330, 420, 560], lag_s=20, leader="db", follower="api")

    for svc in ("db", "api"):
        rows = [r for r in inc.evidence if r[4] == svc]
        inc.services[svc] = ServiceFacts(count=len(rows), first_us=int(rows[0][0]), last_us=int(rows[-1][0]),
                                         severity=3, example="e")
    plain = {c.service: c for c in ranking.rank(inc, Topology(), {})}
    assert "lag test" not in plain["db"].reason  # off by default: measured, not better (docs/correlation.md)
    monkeypatch.setitem(ranking.WEIGHTS, "lead", 0.3)
    weighted = {c.service: c for c in ranking.rank(inc, Topology(), {})}
    assert "its symptom rate leads api by" in weighted["db"].reason
    assert weighted["db"].score - plain["db"].score > weighted["api"].score - plain["api"].score
