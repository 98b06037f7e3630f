"""The per-object failure rules (producers/sources/objects.py) on a fake clock: pure, no I/O."""

from __future__ import annotations

import pytest

from producers.base import SourceContext
from producers.metrics import RecordingMetrics
from producers.ratelimit import FakeClock, TokenBucket
from producers.sources import AccessDenied, ApiRejected, NotFound, objects
from producers.sources.objects import Failure, ObjectGuard, Verdict, failure_of
from schemas.models import Source


def guard(attempts: int = 3, park_s: float = 60.0) -> tuple[ObjectGuard, FakeClock, RecordingMetrics]:
    clock, metrics = FakeClock(), RecordingMetrics()
    ctx = SourceContext(Source.KUBERNETES, clock, TokenBucket(1, 1, clock), metrics,
                        object_attempts=attempts, park_s=park_s)
    return ObjectGuard(ctx, "logs:prod:shop"), clock, metrics


def test_api_errors_map_to_gone_denied_and_rejected_and_a_401_is_never_per_object() -> None:
    assert failure_of(NotFound("404")) is Failure.GONE
    assert failure_of(AccessDenied("403", 403)) is Failure.DENIED
    assert failure_of(ApiRejected("400", 400)) is Failure.REJECTED
    assert failure_of(AccessDenied("401", 401)) is None


def test_a_gone_object_is_skipped_without_a_dead_letter() -> None:
    g, _, metrics = guard()
    assert g.failed("shop/web-1/web", Failure.GONE, "pods \"web-1\" not found") == (Verdict.SKIP, None)
    assert metrics.value("seismo_poller_object_errors_total", reason="gone") == 1
    assert not g.parked("shop/web-1/web")


def test_a_rejected_object_is_retried_up_to_its_attempts_then_parked_until_the_parking_ends() -> None:
    g, clock, metrics = guard(attempts=3, park_s=60)
    assert [g.failed("o", Failure.REJECTED, "400")[0] for _ in range(2)] == [Verdict.RETRY] * 2
    verdict, letter = g.failed("o", Failure.REJECTED, "400 waiting to start")
    assert verdict is Verdict.PARK and letter is not None
    assert letter.error_type == "object_parked" and "after 3 failed attempt(s) (rejected)" in letter.reason
    assert g.parked("o")
    clock.advance(60)
    assert not g.parked("o")
    assert g.failed("o", Failure.REJECTED, "400")[0] is Verdict.RETRY, "a lifted parking starts a fresh count"
    assert metrics.value("seismo_poller_parked_total") == 1


def test_a_denied_object_is_parked_at_once_and_a_success_forgets_earlier_failures() -> None:
    g, _, _ = guard(attempts=2)
    assert g.failed("d", Failure.DENIED, "403")[0] is Verdict.PARK
    assert g.failed("r", Failure.REJECTED, "400")[0] is Verdict.RETRY
    g.succeeded("r")
    assert g.failed("r", Failure.REJECTED, "400")[0] is Verdict.RETRY


def test_the_records_of_objects_that_went_away_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(objects, "MAX_RECORDS", 5)
    g, _, _ = guard(attempts=10)
    for i in range(50):
        g.failed(f"pod-{i}", Failure.REJECTED, "400")
    assert len(g._records) == 5
