"""Recorded verdicts become the success probability of the next suggestion for the same fingerprint."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.codec import codec_for
from schemas.feedback import Feedback, Outcome
from schemas.models import Event, Incident
from seismo.topics import Topics
from stream_processors.correlate.adapter import CorrelateAdapter
from stream_processors.correlate.correlator import CorrelatorConfig
from stream_processors.correlate.outcomes import Outcomes, action_of
from stream_processors.correlate.probe import FixedProbe
from stream_processors.runtime.step import Output, Record
from tests.unit.test_correlate_adapter import partitioned

TOPICS = Topics("raw", "enriched", "anomalies", "cursors", "incidents", "dlq", "signals", "feedback")


def test_a_verdict_names_its_remediation_by_action_by_suggestion_or_by_command() -> None:
    assert action_of("Undo the last rollout", "cart") == "undo the last rollout"
    shown = "[reversible] kubectl rollout undo deployment/cart -n prod"
    assert action_of(shown, "cart") == "undo the last rollout"
    assert action_of("kubectl rollout restart deployment/cart -n prod", "cart") == "restart the pods"
    assert action_of("we tried: scale out, twice", "cart") == "scale out"
    assert action_of("rebooted the router", "cart") is None
    assert action_of("", "cart") is None


def plain(iid: str, outcome: Outcome, remediation: str | None) -> dict[str, object]:
    return {"incident_id": iid, "outcome": outcome.value, "remediation": remediation}


def test_the_latest_verdict_per_incident_counts_and_verdicts_without_a_remediation_count_for_none() -> None:
    out = Outcomes()
    out.published("inc-1", "fp-a", "cart")
    out.published("inc-2", "fp-a", "cart")
    out.published("inc-3", "fp-b", "auth")
    assert out.verdict(plain("inc-1", Outcome.RESOLVED_BY_REMEDIATION, "undo the last rollout"))
    assert out.verdict(plain("inc-2", Outcome.STILL_OPEN, "undo the last rollout"))
    assert out.tally() == {"fp-a|undo the last rollout": (1, 1)}
    # the same person changed their mind: the latest verdict replaces the first
    assert out.verdict(plain("inc-2", Outcome.RESOLVED_BY_REMEDIATION, "undo the last rollout"))
    assert out.tally() == {"fp-a|undo the last rollout": (2, 0)}
    assert out.verdict(plain("inc-1", Outcome.FALSE_POSITIVE, None))  # withdraws inc-1's count
    assert out.tally() == {"fp-a|undo the last rollout": (1, 0)}
    assert not out.verdict(plain("inc-9", Outcome.RESOLVED_BY_REMEDIATION, "scale out"))  # never published
    assert not out.verdict(plain("inc-3", Outcome.RESOLVED_BY_REMEDIATION, "rebooted the router"))
    assert Outcomes.from_json(out.to_json()).tally() == out.tally()


class Driver:
    """The correlate step fed like the runtime feeds it, its signals looped back."""

    def __init__(self, partitions: int) -> None:
        self.step = CorrelateAdapter(TOPICS, CorrelatorConfig(max_evidence=200), FixedProbe(partitions))
        self.step.attach(lambda key: None)
        self.published: list[Incident] = []
        self.loop: list[Record] = []

    def feed(self, batch: list[Record]) -> None:
        decode = codec_for("incident").decode
        records = batch
        while records:
            out = Output()
            for r in records:
                self.step.handle(r, out)
            self.step.end_batch(out)
            records = []
            for topic, key, value in out.records:
                if topic == TOPICS.signals:
                    records.append(Record(TOPICS.signals, 0, 0, key, value, 0))
                elif topic == TOPICS.incidents:
                    self.published.append(Incident.from_avro(decode(value)))


T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def estate(bursts: list[int]) -> list[Event]:
    """Two hours of quiet info traffic from three services, and in ``cart`` a burst of pool
    exhaustion errors at each of ``bursts`` (minutes)."""
    events = [Event(id=f"bg-{svc}-{m}", source="kubernetes", kind="log", timestamp=T0 + timedelta(minutes=m),
                    service=svc, severity="info", message=f"GET /health 200 in {m % 7} ms")
              for m in range(0, 240) for svc in ("cart", "auth", "web")]
    for b in bursts:
        events += [Event(id=f"err-{b}-{k}", source="kubernetes", kind="log",
                         timestamp=T0 + timedelta(minutes=b, seconds=6 * k), service="cart", severity="error",
                         message="psycopg.OperationalError: connection pool exhausted (max=20)",
                         template_id="t-pool",
                         template="psycopg.OperationalError: connection pool exhausted <*>")
                   for k in range(30)]
    return sorted(events, key=lambda e: (e.timestamp, e.id))


def test_a_verdict_on_the_feedback_topic_sets_the_success_of_the_same_fingerprints_suggestions() -> None:
    events = estate([60, 180])
    first = [e for e in events if e.timestamp < T0 + timedelta(minutes=120)]
    driver = Driver(1)
    driver.feed(partitioned(first, 1)[0])
    suggested = [i for i in driver.published if i.remediation_suggestions]
    assert suggested, "the first burst must publish an incident with suggestions"
    target = suggested[-1]
    action = target.remediation_suggestions[0].action
    assert target.remediation_suggestions[0].basis.startswith("prior")
    verdict = Feedback(incident_id=target.id, outcome=Outcome.RESOLVED_BY_REMEDIATION, remediation=action,
                       recorded_by="test", recorded_at=datetime.now(UTC))
    value = codec_for("feedback").encode(verdict.to_avro())
    driver.feed([Record(TOPICS.feedback, 0, 0, target.id.encode(), value, 0)])
    seen = len(driver.published)
    rest = partitioned(events, 1)[0][len(first):]
    driver.feed(rest)
    later = [i for i in driver.published[seen:] if i.fingerprint == target.fingerprint]
    assert later, "the second burst must publish an incident with the same fingerprint"
    counted = [s for i in later for s in i.remediation_suggestions if s.action == action]
    assert counted and all(s.basis == "1 resolved, 0 not helpful for this fingerprint" for s in counted)
    assert all(abs(s.success_probability - 2 / 3) < 1e-3 for s in counted)
