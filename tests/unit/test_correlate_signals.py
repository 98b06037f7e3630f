"""The correlate step reads three fields of an event that ``may_signal`` says cannot be a signal:
that must never drop a signal ``kind_of`` would have given."""

from __future__ import annotations

import itertools

from schemas.models import EventKind, Severity
from stream_processors.correlate.signals import kind_of, may_signal

MESSAGES = ["", "GET /x 200", "deployed v2 to prod", "rollout restarted", "config changed: pool=50",
            "ERROR connection refused", "scaled to 3 replicas"]
ATTRIBUTES: list[dict[str, str]] = [
    {}, {"status": "error"}, {"status_code": "2"}, {"error": "true"},
    {"trace_id": "0" * 32, "span_id": "1" * 16}, {"traceId": "f" * 32},
]


def test_kind_of_gives_no_signal_wherever_may_signal_says_none_can_come() -> None:
    silent = 0
    for kind, severity in itertools.product(EventKind, Severity):
        if may_signal(kind.value, severity.value):
            continue
        silent += 1
        for message, attrs in itertools.product(MESSAGES, ATTRIBUTES):
            got = kind_of(kind.value, severity.value, message, attrs)
            assert got is None, (kind, severity, message, attrs)
    assert silent == 4  # info and debug logs and metrics: most of a stream


def test_every_kind_and_severity_that_can_give_a_signal_is_read_in_full() -> None:
    for kind, severity in itertools.product(EventKind, Severity):
        gives = any(kind_of(kind.value, severity.value, m, a) is not None
                    for m, a in itertools.product(MESSAGES, ATTRIBUTES))
        if gives:
            assert may_signal(kind.value, severity.value), (kind, severity)
