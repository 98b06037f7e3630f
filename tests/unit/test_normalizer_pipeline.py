"""The pure Normalizer: redaction before templating, per-service mining, stable ids."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from schemas.models import Event
from stream_processors.normalize.normalizer import Normalizer, NormalizerConfig, plain_template_id
from stream_processors.normalize.redaction import Redactor
from stream_processors.normalize.screen import ScreeningRedactor
from stream_processors.normalize.templating import Change

DATA = Path(__file__).resolve().parents[1] / "data" / "redaction"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _rows(name: str) -> list[list[str]]:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return [raw.split("\t") for raw in lines if raw and not raw.startswith("#")]


SECRET_ROWS = _rows("secrets.txt")
LOOKALIKES = [row[0] for row in _rows("lookalikes.txt")]


def event(message: str, i: int = 0, service: str = "api", **extra: Any) -> Event:
    fields: dict[str, Any] = {"source": "file", "kind": "log", "severity": "info", **extra}
    return Event(id=f"ev-{i}", timestamp=T0, service=service, message=message, **fields)


def leaks(secret: str, text: str) -> bool:
    """The secret, or any 12-character window of a long one, survives in ``text``."""
    if secret in text:
        return True
    return len(secret) >= 16 and any(secret[i : i + 12] in text for i in range(len(secret) - 11))


# Lines of one service: two shapes whose variables differ, then a shape that widens.
STREAM = [
    "user 17 logged in from 10.1.1.1 after 12ms",
    "user 9 logged in from 10.2.2.2 after 7ms",
    "cache miss for key orders:17 in region eu",
    "cache miss for key orders:9 in region us",
    "user 3 logged in from 10.3.3.3 after 40ms",
    "cache miss for key carts:4 in region ap",
    "worker 3 finished job batch-7 in 2s",
    "worker 4 finished job export in 3s",
    "worker 5 finished job import in 3s",
    "user 12 logged in from 10.9.9.9 after 1ms",
]


# --- redaction -------------------------------------------------------------------------


def test_no_secret_of_the_corpus_survives_anywhere_in_the_enriched_event() -> None:
    normalizer = Normalizer()
    leaked = []
    for i, row in enumerate(SECRET_ROWS):
        line, secrets = row[0], row[1:]
        source = event(line, i, attributes={"line": line, "note": f"seen {line}", "k8s.pod": "api-1"})
        enriched = normalizer.normalize(source).model_dump_json()
        leaked += [(line, s) for s in secrets if leaks(s, enriched)]
    assert leaked == []


def test_repeated_lines_stay_redacted_when_the_memos_are_warm() -> None:
    normalizer = Normalizer()
    lines = [row[0] for row in SECRET_ROWS] + LOOKALIKES
    first = [normalizer.normalize(event(line, i)).message for i, line in enumerate(lines)]
    again = [normalizer.normalize(event(line, i)).message for i, line in enumerate(reversed(lines))]
    assert again == first[::-1]
    assert first[len(SECRET_ROWS):] == LOOKALIKES
    assert all(
        not leaks(secret, message)
        for row, message in zip(SECRET_ROWS, again[::-1], strict=False)
        for secret in row[1:]
    )


def test_secrets_become_placeholders_in_message_template_and_attributes() -> None:
    out = Normalizer().normalize(
        event(
            "login ok password=hunter2 from 10.0.0.1",
            attributes={"db": "postgres://app:s3cr3t@db:5432/x", "region": "eu-west-1"},
        )
    )
    assert out.message == "login ok password=<SECRET:password> from 10.0.0.1"
    assert out.template == "login ok password=<SECRET:password> from <IP>"
    assert out.attributes == {"db": "postgres://app:<SECRET:url_password>@db:5432/x", "region": "eu-west-1"}


def test_an_attribute_named_like_a_secret_loses_its_whole_value_but_not_a_harmless_one() -> None:
    attributes = {
        "password": "correct horse battery",
        "Authorization": "abc123DEF456ghi789",
        "api_key": "${API_KEY}",
        "max_tokens": "4096",
    }
    out = Normalizer().normalize(event("request done", attributes=attributes))
    assert out.attributes == {
        "password": "<SECRET:password>",
        "Authorization": "<SECRET:bearer_token>",
        "api_key": "${API_KEY}",
        "max_tokens": "4096",
    }


def test_full_width_keys_are_redacted_in_the_form_the_masker_sees() -> None:
    password = "".join(chr(ord(c) + 0xFEE0) for c in "password")  # full-width letters
    out = Normalizer().normalize(event(f"retry {password}=hunter2x now", attributes={password: "hunter2x"}))
    assert "hunter2x" not in out.model_dump_json()


def test_the_screen_gives_exactly_the_redactors_result_on_both_corpora() -> None:
    full, screen = Redactor(), ScreeningRedactor()
    tricky = [
        "card 4111 1111 1111 1111 ok",
        "amex 3782 822463 10005 ok",
        "order 2024 5555 4444 done",
        "block blk_-6952295868487656571 size 67108864",
        "\u212a\u212aey=abcdef12345 tok\u212aen=abc123xyz",
    ]
    lines = [row[0] for row in SECRET_ROWS] + LOOKALIKES + tricky
    assert [screen.redact(line) for line in lines] == [full.redact(line) for line in lines]
    assert [screen.redact(line) for line in lines] == [full.redact(line) for line in lines]  # memo warm


class _Unscreened(ScreeningRedactor):
    """A screen that passes nothing: every line goes to the plain Redactor."""

    __slots__ = ()

    def passes(self, text: str, tokens: list[str]) -> bool:
        return False


def _synthetic_log_mix(count: int, seed: int = 3) -> list[Event]:
    """Log lines of a few services, mostly clean, with secrets, look-alikes and Unicode."""
    rng = random.Random(seed)
    users = ["root", "admin", "bob", "oracle", "test"]
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in "password")
    shapes: list[Callable[[], str]] = [
        lambda: (
            f"Failed password for invalid user {rng.choice(users)} from 10.0.{rng.randint(0, 255)}.1 "
            f"port {rng.randint(1024, 65535)} ssh2"
        ),
        lambda: f"Accepted password for {rng.choice(users)} from 10.1.1.{rng.randint(0, 255)} port 22 ssh2",
        lambda: "pam_unix(sshd:auth): check pass; user unknown",
        lambda: (
            f"Receiving block blk_{rng.randint(-(10**18), 10**18)} src: /10.250.19.102:50010 "
            f"dest: /10.250.19.102:{rng.randint(2000, 6999)}"
        ),
        lambda: f"PacketResponder {rng.randint(0, 3)} for block blk_{rng.randint(0, 10**18)} terminating",
        lambda: (
            f"[client 222.166.{rng.randint(0, 255)}.184] Directory index forbidden by rule: /var/www/html/"
        ),
        lambda: f"jk2_init() Found child {rng.randint(2000, 6999)} in scoreboard slot {rng.randint(1, 12)}",
        lambda: (
            f"Sun Dec 04 04:47:44 {rng.choice([2005, 2006])} {rng.randint(2000, 6999)} {rng.randint(1, 99)}"
        ),
        lambda: f"order {rng.randint(10**15, 10**16)} shipped to warehouse {rng.randint(1, 9)}",
        lambda: f"login ok password={rng.choice(['hunter2x', 'Zx9!mK2#pL29', '***', 'null'])} user=bob",
        lambda: f"login password = {rng.choice(['hunter2x', 'changeme88'])}",
        lambda: f"card 4111 1111 1111 1111 charged {rng.randint(1, 500)} EUR",
        lambda: f"Authorization: Bearer {rng.choice(['f8W50sr2qUGS4LifvrDXTdYkuoTFz', 'abc'])} path=/v1",
        lambda: f"mail sent to user{rng.randint(1, 9)}@example.com",
        lambda: "aws key AKIAIOSFODNN7EXAMPLE found in config",
        lambda: f"got {rng.randint(1, 9)} tokens, api_key: {rng.randint(1, 99)} --token x{rng.randint(1, 9)}",
        lambda: f"retry {full_width}=hunter2x now \u212apass=s3cr3tx \u0130",
        lambda: f"status=M v={rng.randint(1, 20)} token\t: value{rng.randint(1, 9)}",
    ]
    events = []
    for i in range(count):
        service = rng.choice(["sshd", "hdfs", "apache", "api"])
        message = rng.choice(shapes)()
        attributes = {"host": f"node-{rng.randint(1, 4)}", rng.choice(["token", "note"]): message[:20]}
        events.append(event(message, i, service=service, attributes=attributes))
    return events


def _normalized(normalizer: Normalizer, events: list[Event]) -> list[tuple[object, ...]]:
    out = [normalizer.process(e) for e in events]
    return [
        (n.event.message, n.event.attributes, n.event.template, n.event.template_id, n.change) for n in out
    ]


@pytest.mark.parametrize("corpus", ["secrets", "lookalikes", "synthetic"])
def test_the_fast_path_gives_the_same_events_as_the_plain_redactor(corpus: str) -> None:
    if corpus == "synthetic":
        events = _synthetic_log_mix(2000)
    else:
        lines = [row[0] for row in SECRET_ROWS] if corpus == "secrets" else LOOKALIKES
        events = [event(line, i, attributes={"line": line}) for i, line in enumerate(lines)]
    fast = Normalizer()
    reference = Normalizer()
    reference._screen = _Unscreened(Redactor())
    expected = _normalized(reference, events)
    assert _normalized(fast, events) == expected
    assert _normalized(fast, events) == _normalized(reference, events)  # memos warm


def test_no_lookalike_is_changed_by_the_normalizer() -> None:
    normalizer = Normalizer()
    events = [event(line, i, attributes={"line": line}) for i, line in enumerate(LOOKALIKES)]
    changed = [e.message for e in events if normalizer.normalize(e).message != e.message]
    assert changed == []


def test_with_redaction_switched_off_the_message_is_kept() -> None:
    out = Normalizer(NormalizerConfig(redact=False)).normalize(event("password=hunter2 done"))
    assert out.message == "password=hunter2 done"


# --- templates -------------------------------------------------------------------------


def test_lines_differing_only_in_variables_share_a_template_id() -> None:
    normalizer = Normalizer()
    a = normalizer.normalize(event(STREAM[0], 0))
    b = normalizer.normalize(event(STREAM[1], 1))
    assert a.template == b.template == "user <NUM> logged in from <IP> after <DURATION>"
    assert a.template_id == b.template_id
    assert a.message == STREAM[0]  # the original text stays in the message


def test_a_template_that_gains_a_wildcard_keeps_its_id() -> None:
    normalizer = Normalizer()
    first = normalizer.process(event("worker 4 finished job export in 3s"))
    widened = normalizer.process(event("worker 5 finished job import in 3s", 1))
    assert (first.change, widened.change) == (Change.NEW, Change.GENERALIZED)
    assert widened.event.template == "worker <NUM> finished job <*> in <DURATION>"
    assert widened.event.template_id == first.event.template_id


def test_each_service_mines_its_own_templates() -> None:
    normalizer = Normalizer()
    normalizer.normalize(event(STREAM[0], 0, service="api"))
    second = normalizer.process(event(STREAM[1], 1, service="billing"))
    assert second.change is Change.NEW
    assert normalizer.services() == ("api", "billing")


def test_metric_events_are_untouched_except_for_their_template_fields() -> None:
    metric = event(
        "latency_p95_ms 812",
        kind="metric",
        metric={"name": "latency_p95_ms", "value": 812.0, "unit": "ms"},
        attributes={"region": "eu"},
    )
    first = Normalizer().process(metric)
    again = Normalizer().normalize(metric)
    fields = {"template", "template_id"}
    assert first.change is None
    assert first.event.model_dump(exclude=fields) == metric.model_dump(exclude=fields)
    assert first.event.template == metric.message
    assert first.event.template_id == again.template_id == plain_template_id(metric.message)


# --- stable ids ------------------------------------------------------------------------


def ids(normalizer: Normalizer, lines: list[str], start: int = 0) -> list[str | None]:
    return [normalizer.normalize(event(line, start + i)).template_id for i, line in enumerate(lines)]


def test_ids_survive_a_snapshot_and_restore_into_a_new_normalizer() -> None:
    original = Normalizer()
    first = ids(original, STREAM)
    restored = Normalizer()
    restored.restore("api", original.snapshot("api"))
    assert ids(restored, STREAM) == first
    assert restored.snapshot("api") != original.snapshot("api")  # sizes moved on, nothing else
    assert ids(original, STREAM) == first


def test_a_crash_replays_lines_to_the_ids_they_were_published_with() -> None:
    uninterrupted = Normalizer()
    published = ids(uninterrupted, STREAM[:4])
    saved = uninterrupted.snapshot("api")
    published += ids(uninterrupted, STREAM[4:], start=4)

    # the worker dies after publishing everything; it restarts from the last save and
    # the broker redelivers from an older committed offset: everything is replayed
    restarted = Normalizer()
    restarted.restore("api", saved)
    assert ids(restarted, STREAM[4:], start=4) == published[4:]
    assert ids(restarted, STREAM) == published


def test_a_relearned_template_gets_its_old_id_back() -> None:
    original = Normalizer()
    before = ids(original, STREAM)
    assert ids(Normalizer(), STREAM) == before  # from scratch: same stream, same ids


def test_a_corrupt_snapshot_is_refused_and_leaves_the_miner_as_it_was() -> None:
    from stream_processors.normalize.templating import InvalidState

    normalizer = Normalizer()
    before = ids(normalizer, STREAM[:2])
    with pytest.raises(InvalidState):
        normalizer.restore("api", b"{not json")
    assert ids(normalizer, STREAM[:2]) == before
