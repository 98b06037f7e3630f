"""The cross-service correlator on hand-made signals: grouping, the background test, lifecycle."""

from __future__ import annotations

from stream_processors.correlate.correlator import Correlator, CorrelatorConfig
from stream_processors.correlate.signals import Signal, SignalKind

S = 1_000_000
T0 = 1_715_673_600 * S


def sig(i: str, t: float, service: str, summary: str = "boom", kind: SignalKind = SignalKind.SYMPTOM,
        event_kind: str = "error", severity: int = 3, source: str = "sentry", **kw: object) -> Signal:
    return Signal(id=i, kind=kind, ts_us=T0 + int(t * S), service=service, source=source,
                  event_kind=event_kind, severity=severity, summary=summary, **kw)  # type: ignore[arg-type]


def feed(c: Correlator, signals: list[Signal]) -> set[str]:
    touched: set[str] = set()
    for s in sorted(signals, key=lambda s: (s.ts_us, s.id)):
        touched |= c.advance(s.ts_us)
        touched |= c.process(s)
    return touched


def live(c: Correlator) -> list[str]:
    return sorted(i.id for i in c.incidents.values() if not i.merged_into)


def test_a_lone_stray_error_opens_no_incident() -> None:
    c = Correlator()
    feed(c, [sig("e1", 0, "cart"), sig("e2", 3600, "cart")])
    assert live(c) == []


def test_a_burst_beyond_the_background_rate_opens_one_incident_holding_the_burst() -> None:
    c = Correlator()
    feed(c, [sig(f"e{i}", 10 * i, "cart") for i in range(4)])
    (iid,) = live(c)
    inc = c.incidents[iid]
    assert inc.count == 4 and list(inc.services) == ["cart"]
    assert inc.detected_us == T0 + 10 * S  # the second error made it significant


def test_once_its_background_rate_is_known_a_busy_service_needs_a_bigger_burst_than_a_quiet_one() -> None:
    c = Correlator()
    feed(c, [sig(f"b{i}", 200 * i, "busy") for i in range(60)])  # one error every 200 s, for 3 h 20 min
    assert all(i.detected_us < T0 + 3600 * S for i in c.incidents.values())  # only while it was unknown
    feed(c, [sig("q1", 12_000, "quiet"), sig("q2", 12_030, "quiet"),
             sig("x1", 12_005, "busy"), sig("x2", 12_010, "busy")])
    opened = {s for i in c.incidents.values() if i.detected_us > T0 + 3600 * S for s in i.services}
    assert opened == {"quiet"}


def test_a_caller_naming_the_failing_service_joins_its_incident() -> None:
    c = Correlator()
    feed(c, [sig("p1", 0, "payments", "pool exhausted"), sig("p2", 5, "payments", "pool exhausted"),
             sig("c1", 60, "checkout", "TimeoutError: upstream payments did not respond")])
    (iid,) = live(c)
    assert sorted(c.incidents[iid].services) == ["checkout", "payments"]


def test_unrelated_services_failing_at_the_same_time_stay_apart() -> None:
    c = Correlator()
    feed(c, [sig("a1", 0, "cart"), sig("a2", 5, "cart"), sig("b1", 10, "ledger"), sig("b2", 15, "ledger")])
    assert len(live(c)) == 2


def test_grafana_and_cloudwatch_alerting_on_one_service_join_one_incident() -> None:
    c = Correlator()
    feed(c, [sig("g", 0, "orders", "[FIRING:1] HighLatency", event_kind="alert", source="grafana"),
             sig("w", 40, "orders", "ALARM: orders-p95-latency > 800", event_kind="alert",
                 source="cloudwatch", severity=4)])
    (iid,) = live(c)
    assert c.incidents[iid].services["orders"].sources == ["cloudwatch", "grafana"]


def test_a_shared_trace_id_links_a_symptom_of_another_service() -> None:
    c = Correlator()
    feed(c, [sig("a1", 0, "cart", trace_id="t1"), sig("a2", 5, "cart"),
             sig("x", 20, "media", "500 on GET", trace_id="t1")])
    (iid,) = live(c)
    assert "media" in c.incidents[iid].services


def test_an_incident_resolves_after_the_quiet_period_even_when_its_service_goes_silent() -> None:
    c = Correlator(CorrelatorConfig(quiet_s=600))
    feed(c, [sig("a1", 0, "cart"), sig("a2", 5, "cart")])
    (iid,) = live(c)
    assert c.advance(T0 + 606 * S) == {iid}  # time moved on in other services
    inc = c.incidents[iid]
    assert inc.status == "resolved" and inc.resolved_us == T0 + 605 * S


def test_the_same_problem_returning_within_the_grace_period_reopens_the_incident() -> None:
    c = Correlator(CorrelatorConfig(quiet_s=600, reopen_grace_s=1800))
    feed(c, [sig("a1", 0, "cart", template_id="t"), sig("a2", 5, "cart", template_id="t")])
    c.advance(T0 + 700 * S)
    feed(c, [sig("a3", 900, "cart", template_id="t"), sig("a4", 905, "cart", template_id="t")])
    (iid,) = live(c)
    assert c.incidents[iid].status == "open" and c.incidents[iid].reopened == 1


def test_a_signal_naming_one_incident_sharing_a_trace_with_another_merges_them_under_the_older_id() -> None:
    c = Correlator()
    feed(c, [sig("a1", 0, "auth", "pool exhausted"), sig("a2", 5, "auth", "pool exhausted"),
             sig("b1", 30, "search", "disk full", trace_id="t9"), sig("b2", 35, "search", "disk full"),
             sig("x", 60, "gateway", "TimeoutError: upstream auth", trace_id="t9")])
    older = next(i for i in c.incidents.values() if "auth" in i.services and not i.merged_into)
    gone = [i for i in c.incidents.values() if i.merged_into]
    assert [g.merged_into for g in gone] == [older.id]
    assert older.merged_from == [gone[0].id]


def test_a_replayed_signal_changes_nothing() -> None:
    c = Correlator()
    feed(c, [sig("a1", 0, "cart"), sig("a2", 5, "cart")])
    before = c.to_json()
    assert c.process(sig("a2", 5, "cart")) == set()
    assert c.to_json() == before


def test_an_anomaly_arriving_before_or_after_its_incident_ends_in_the_same_state() -> None:
    anomaly = sig("a:m", 2, "cart", "latency", kind=SignalKind.ANOMALY, score=0.9)
    early, late = Correlator(), Correlator()
    feed(early, [anomaly, sig("a1", 0, "cart"), sig("a2", 5, "cart")])
    feed(late, [sig("a1", 0, "cart"), sig("a2", 5, "cart")])
    late.process(anomaly)
    (e,), (lt,) = live(early), live(late)
    shown = early.view(early.incidents[e])
    assert shown.to_json() == late.view(late.incidents[lt]).to_json()
    assert shown.services["cart"].anomaly == 0.9 and any(r[1] == "a:m" for r in shown.evidence)


def test_state_round_trips_through_json() -> None:
    c = Correlator()
    feed(c, [sig("a1", 0, "cart", refs=("node=n1",)), sig("a2", 5, "cart"), sig("s", 6, "cart",
             kind=SignalKind.SPAN, span_id="s1", trace_id="t")])
    again = Correlator.from_json(c.to_json(), c.cfg)
    assert again.to_json() == c.to_json()


def calls(c: Correlator, caller: str, callee: str) -> None:
    c.topo.add_call(caller, callee)


def test_two_unrelated_stray_errors_in_one_service_open_nothing_but_two_of_one_message_do() -> None:
    c = Correlator()
    feed(c, [sig("s1", 0, "cart", "AttributeError: 'NoneType' object"),
             sig("s2", 60, "cart", "KeyError: 'x'")])
    assert live(c) == []
    feed(c, [sig("k1", 900, "ledger", "KeyError: 'x'"), sig("k2", 960, "ledger", "KeyError: 'x'")])
    assert len(live(c)) == 1


def test_a_caller_bursting_joins_its_dependencys_incident_but_a_callee_failing_on_its_own_does_not() -> None:
    c = Correlator()
    calls(c, "checkout", "payments")
    calls(c, "payments", "ledger")
    feed(c, [sig("p1", 0, "payments", "pool exhausted"), sig("p2", 5, "payments", "pool exhausted"),
             sig("c1", 30, "checkout", "HTTP 500 on /pay"), sig("c2", 35, "checkout", "HTTP 500 on /pay"),
             sig("l1", 40, "ledger", "disk full"), sig("l2", 45, "ledger", "disk full")])
    groups = sorted(sorted(c.incidents[i].services) for i in live(c))
    assert groups == [["checkout", "payments"], ["ledger"]]


def test_a_victim_failing_in_its_own_way_starts_a_new_incident() -> None:
    c = Correlator()
    feed(c, [sig("p1", 0, "payments", "pool exhausted"), sig("p2", 5, "payments", "pool exhausted"),
             sig("v1", 20, "checkout", "TimeoutError: upstream payments did not respond"),
             sig("k1", 60, "checkout", "KeyError: 'currency'"),
             sig("k2", 70, "checkout", "KeyError: 'currency'")])
    assert len(live(c)) == 2


def test_a_straggler_ordered_after_later_signals_is_grouped_by_its_own_time() -> None:
    # what the aligner hands over when a partition's event comes later than its lateness: the
    # straggler (t=210) is processed after signals 18 minutes younger, at the partition's edge
    c = Correlator()
    early = sig("p1", 180, "payments", "payments says p1")
    later = [sig(f"b{i}", 1260 + 10 * i, "payments", "bank refused") for i in range(3)]
    straggler = sig("p1b", 210, "payments", "payments says p1")
    feed(c, [early, *later])
    c.advance(T0 + 1280 * S)
    c.process(straggler)
    groups = sorted(sorted(str(row[1]) for row in c.incidents[i].evidence) for i in live(c))
    assert groups == [["b0", "b1", "b2"], ["p1", "p1b"]]


def test_a_tight_burst_in_a_busy_service_opens_in_a_shorter_window_where_the_whole_one_drowns_it() -> None:
    from stream_processors.correlate.links import scan, surprise

    # a service known to log a stray error every 200 s for the last three hours, none in an incident
    c = Correlator(background={"busy": [T0 + 200 * i * S for i in range(54)]}, since_us=T0)
    burst = [sig(f"x{i}", 10_800 + 2 * i, "busy", "pool exhausted", template_id="tpl-pool") for i in range(4)]
    feed(c, burst[:3])
    assert live(c) == []  # three within six seconds: not yet
    feed(c, burst[3:])
    (iid,) = live(c)
    assert {r[1] for r in c.incidents[iid].evidence} == {s.id for s in burst}
    # the whole 5-minute window alone would not have opened it: 4 against a background of 1.5
    rate = 1 / 200
    times = [s.ts_us for s in burst]
    assert surprise(4, rate, 300.0) > 1e-3 > scan(times, times[-1], rate, 300.0)
