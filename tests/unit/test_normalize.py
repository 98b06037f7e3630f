from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas.models import Event
from stream_processors.normalize import mask, normalize, template_id


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("connect to 10.0.0.12:5432 failed", "connect to <IP> failed"),
        ("request 123e4567-e89b-12d3-a456-426614174000 done", "request <UUID> done"),
        ("at 2024-05-01T12:00:00.123Z retry", "at <TS> retry"),
        ("open /var/lib/data/file.db", "open <PATH>"),
        ("took 250ms", "took <DURATION>"),
        ("ptr 0x7ffde3a0", "ptr <HEX>"),
        ("GET https://api.example.com/v1/items?id=3 200", "GET <URL> <NUM>"),
        ("retry   3 of\t5", "retry <NUM> of <NUM>"),
    ],
)
def test_variable_parts_become_typed_placeholders(text: str, expected: str) -> None:
    assert mask(text) == expected


def test_messages_differing_only_in_variables_share_a_template_id() -> None:
    base = {
        "source": "file",
        "kind": "log",
        "timestamp": datetime(2024, 1, 1, tzinfo=UTC),
        "service": "api",
        "severity": "info",
    }
    a = normalize(Event(id="a", message="user 17 logged in from 10.1.1.1", **base))
    b = normalize(Event(id="b", message="user 9 logged in from 10.2.2.2", **base))
    assert a.template == b.template == "user <NUM> logged in from <IP>"
    assert a.template_id == b.template_id == template_id("api", a.template)
    assert a.message == "user 17 logged in from 10.1.1.1"  # the original stays
