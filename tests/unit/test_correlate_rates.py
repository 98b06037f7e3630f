"""Rates that move together as correlation evidence, and incidents that split when they fall apart."""

from __future__ import annotations

from schemas.codec import AvroCodec, codec_for, earlier_schemas
from schemas.models import Incident
from stream_processors.correlate.correlator import Correlator, CorrelatorConfig
from stream_processors.correlate.incident_state import RATE_LINK, IncidentState
from stream_processors.correlate.lagrate import co_movement
from stream_processors.correlate.links import CONFIDENCE, LinkKind, combine, rate_confidence
from stream_processors.correlate.publish import build
from stream_processors.correlate.split import retest
from tests.unit.test_correlate_correlator import T0, S, feed, live, sig

PATTERN = [1, 3, 1, 2, 1, 3, 2, 1]  # symptoms per 10 s bin


def times(pattern: list[int], start_s: float) -> list[int]:
    return [T0 + int((start_s + 10 * b + j) * S) for b, n in enumerate(pattern) for j in range(n)]


def test_a_rate_that_follows_another_by_twenty_seconds_correlates_at_that_lag() -> None:
    leader, follower = times(PATTERN, 0), times(PATTERN, 20)
    r, lag = co_movement(leader, follower) or (0.0, 0)
    assert r > 0.99 and lag == 20
    r, lag = co_movement(follower, leader) or (0.0, 0)
    assert r > 0.99 and lag == -20  # seen from the follower: the other one leads


def test_rates_that_do_not_move_together_correlate_weakly_and_too_few_bins_are_not_tested() -> None:
    steady = [T0 + int(10 * i * S) for i in range(40)]  # one symptom every 10 s
    burst = times(PATTERN, 100)
    r, _ = co_movement(steady, burst) or (1.0, 0)
    assert r < 0.3
    one_burst = [T0, T0 + S, T0 + 2 * S, T0 + 3 * S]  # four symptoms in one bin: a point, not a rate
    assert co_movement(burst, one_burst) is None
    assert co_movement(burst, burst[:3]) is None


def test_rates_join_with_the_same_template_but_not_alone_nor_with_a_merely_similar_one() -> None:
    assert rate_confidence(0.7) == 0.3 and rate_confidence(1.0) == 0.38
    join = 0.6
    for r in (0.7, 0.85, 1.0):
        assert rate_confidence(r) < join
        assert combine([rate_confidence(r), CONFIDENCE[LinkKind.TEMPLATE]]) >= join
        assert combine([rate_confidence(r), CONFIDENCE[LinkKind.SIMILAR]]) < join


def _two_bursts(b_summary: str) -> list:  # type: ignore[type-arg]
    """inventory (quiet until now) fails in a burst; reports, which logs a stray error every 10 minutes,
    fails 10 s behind it with the same rhythm.  Run with :func:`strict` so that reports' first
    five symptoms do not open an incident of their own (at the default a quiet service's three
    symptoms within half a minute do), which leaves room to see the rates link it."""
    background = [sig(f"bg{i}", -3 * 3600 + 600 * i, "reports", "slow query on reports_db",
                      template_id="tpl-bg") for i in range(17)]
    a = [sig(f"a{i}", (t - T0) / S, "inventory", "disk full on /var/lib/db", template_id="tpl-disk")
         for i, t in enumerate(times(PATTERN, 0))]
    tpl = "tpl-disk" if "disk" in b_summary else "tpl-x"
    b = [sig(f"b{i}", (t - T0) / S, "reports", b_summary, template_id=tpl)
         for i, t in enumerate(times(PATTERN, 10))]
    return [*background, *a, *b]


def strict() -> Correlator:
    return Correlator(CorrelatorConfig(open_alpha=1e-9))


def test_a_service_whose_rate_follows_an_incident_and_says_the_same_thing_joins_it() -> None:
    c = strict()
    feed(c, _two_bursts("disk full on /var/lib/db"))
    (iid,) = live(c)
    inc = c.incidents[iid]
    assert sorted(inc.services) == ["inventory", "reports"]
    assert inc.links["inventory|reports"][0] == RATE_LINK
    assert sorted(inc.rates) == ["inventory", "reports"]  # kept, so the link can be re-tested
    published = build(inc, c)
    assert any(e.kind == RATE_LINK for e in published.graph_edges)


def test_the_same_rates_without_another_reason_stay_two_incidents() -> None:
    c = strict()
    feed(c, _two_bursts("report renderer crashed"))
    assert len(live(c)) == 2
    assert all(RATE_LINK not in (v[0] for v in c.incidents[i].links.values()) for i in live(c))


def test_when_the_rates_fall_apart_the_part_they_joined_splits_off_with_its_own_id() -> None:
    c = strict()
    feed(c, _two_bursts("disk full on /var/lib/db"))
    (iid,) = live(c)
    # reports goes on failing on its own, steadily, long after inventory went quiet
    tail = [sig(f"r{i}", 200 + 7 * i, "reports", "disk full on /var/lib/db", template_id="tpl-disk")
            for i in range(60)]
    touched = feed(c, tail)
    assert len(live(c)) == 2
    old = c.incidents[iid]
    (new_id,) = old.split_into
    new = c.incidents[new_id]
    assert sorted(old.services) == ["inventory"] and sorted(new.services) == ["reports"]
    assert new.split_from == iid and new.is_open and new_id in touched
    assert old.count + new.count == 14 + 14 + 60  # nothing lost, nothing counted twice
    assert all(r[4] == "reports" for r in new.evidence) and all(r[4] == "inventory" for r in old.evidence)
    assert "inventory|reports" not in old.links
    later = feed(c, [sig("r-late", 640, "reports", "disk full on /var/lib/db", template_id="tpl-disk")])
    assert new_id in later and iid not in later  # its signals now go to the part that split off
    published = build(new, c)
    assert published.split_from == iid and build(old, c).split_into == [new_id]


def test_a_split_is_a_function_of_the_signals_so_a_replay_from_saved_state_splits_alike() -> None:
    signals = [*_two_bursts("disk full on /var/lib/db"),
               *(sig(f"r{i}", 200 + 7 * i, "reports", "disk full on /var/lib/db", template_id="tpl-disk")
                 for i in range(60))]
    whole = strict()
    feed(whole, signals)
    halves = strict()
    feed(halves, signals[:40])
    halves = Correlator.from_json(halves.to_json(), halves.cfg)
    feed(halves, signals[40:])
    assert sorted(live(whole)) == sorted(live(halves))
    assert {i: sorted(v.services) for i, v in whole.incidents.items()} == \
        {i: sorted(v.services) for i, v in halves.incidents.items()}


def test_structural_evidence_replaces_a_rate_edge_so_it_can_no_longer_be_cut() -> None:
    inc = IncidentState("inc-1", T0, T0, T0)
    inc.link("a", "b", RATE_LINK, 0.45)
    inc.link("a", "b", "call-graph", 0.3)  # weaker, but a reason that stays true
    assert inc.links["a|b"][0] == "call-graph"
    inc.link("a", "b", RATE_LINK, 0.5)
    assert inc.links["a|b"][0] == "call-graph"
    assert retest(inc, T0) == [] and inc.rate_links() == []


def test_incidents_written_before_the_split_fields_still_decode() -> None:
    (v1,) = earlier_schemas("incident")
    old = AvroCodec(v1)
    record = Incident.model_validate({
        "id": "inc-old", "revision": 1, "status": "open", "title": "t", "severity": "error",
        "opened_at": "2024-05-14T08:00:00Z", "updated_at": "2024-05-14T08:00:00Z", "services": ["a"],
        "sources": ["sentry"], "root_cause_candidates": [], "evidence": []}).to_avro()
    for name in ("split_from", "split_into"):
        record.pop(name)
    decoded = Incident.from_avro(codec_for("incident").decode(old.encode(record)))
    assert decoded.id == "inc-old" and decoded.split_from is None and decoded.split_into == []
