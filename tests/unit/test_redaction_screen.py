"""The redaction screen gives exactly the Redactor's result, and skips it where it may."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from stream_processors.normalize.redaction import Redactor
from stream_processors.normalize.redaction import patterns as p
from stream_processors.normalize.screen import ScreeningRedactor
from stream_processors.normalize.screen_tokens import _CARD_PLACE, LINE_LITERALS, _has_literal

DATA = Path(__file__).resolve().parents[1] / "data" / "redaction"
FULL = Redactor()


def _lines(name: str) -> list[str]:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return [raw.split("\t")[0] for raw in lines if raw and not raw.startswith("#")]


CORPUS = _lines("secrets.txt") + _lines("lookalikes.txt")

FULL_WIDTH = "".join(chr(ord(c) + 0xFEE0) for c in "password")  # NFKC folds it to "password"

# Tokens around the screen's edges: key words alone, at the end or inside a token, the
# separators that may follow them, card-number groups and heads, runs, quotes; a Kelvin
# sign that lowers to "k", and a capital dotted I that makes the redactor lower ASCII only.
VOCABULARY = [
    "password", "Password", "PASSWORD", "pass;", "pass", "bypass", "passwd", "pwd", "(pwd)",
    '"password"', "'token'", 'key\\"', "--password", "x--token", "api_key", "secret", "token",
    "token:", "tokens", "Token:", "key=", "password=", "=", ":", "=>", "=hunter2x", ":s3cr3tValue",
    "hunter2x", "null", "***", "4111", "1111", "(4111", "4111-1111", "41111111", "2005", "3782",
    "822463", "10005", "5555", "4444", "4111111111111111", "67108864", "x4111", "a.4111", "17",
    "Bearer", "bearer", "Authorization:", "user@example.com", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc",
    "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "blk_-6952295868487656571",
    "10.251.42.84:50010", "from", "for", "user", "root", "ssh2", "port", "\u212aey=abcdef12345",
    FULL_WIDTH + "=x", "\u212apass=hunter2x", "\u0130", "-----BEGIN", "RSA", "PRIVATE", "KEY-----", "https://a:b@c.io/x",
]  # fmt: skip
SEPARATORS = [" ", " ", " ", "  ", "\t", " \u00a0"]


def _random_lines(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for _ in range(count):
        words = rng.choices(VOCABULARY, k=rng.randint(1, 7))
        line = words[0]
        for word in words[1:]:
            line += rng.choice(SEPARATORS) + word
        lines.append(line)
    return lines


@pytest.mark.parametrize("memo_size", [200_000, 7])
def test_the_screen_gives_exactly_the_redactors_result_on_the_corpora_cold_and_warm(memo_size: int) -> None:
    screen = ScreeningRedactor(memo_size=memo_size)
    expected = [FULL.redact(line) for line in CORPUS]
    assert [screen.redact(line) for line in CORPUS] == expected
    assert [screen.redact(line) for line in CORPUS] == expected


@pytest.mark.parametrize("memo_size", [200_000, 5])
def test_the_screen_gives_exactly_the_redactors_result_on_random_lines_of_edge_tokens(memo_size: int) -> None:
    screen = ScreeningRedactor(memo_size=memo_size)
    lines = _random_lines(6000, seed=7)
    assert [screen.redact(line) for line in lines] == [FULL.redact(line) for line in lines]


@pytest.mark.parametrize(
    "line",
    [
        "Failed password for invalid user admin from 10.0.0.1 port 22 ssh2",
        "pam_unix(sshd:auth): check pass; user unknown",
        "Accepted password for root from 10.0.0.1 port 2005 ssh2",
        "got 2 tokens from the pool",
        "blk_-6952295868487656571 size 67108864 from 10.0.0.1",
    ],
)
def test_a_key_word_or_card_head_that_no_next_token_completes_passes_the_screen(line: str) -> None:
    screen = ScreeningRedactor()
    assert screen.passes(line, line.split())
    assert screen.passes(line, line.split())  # memo warm
    assert not FULL.redact(line).changed


@pytest.mark.parametrize(
    "line",
    [
        "login password = hunter2x",
        "login password : hunter2x",
        "mysql --password hunter2x",
        '{"password" : "hunter2x"}',
        "card 4111 1111 1111 1111 ok",
        "login password=hunter2x",
        "mail me at user@example.com",
    ],
)
def test_a_line_that_may_hold_a_secret_goes_to_the_full_scan(line: str) -> None:
    screen = ScreeningRedactor()
    assert not screen.passes(line, line.split())
    assert screen.redact(line) == FULL.redact(line)


def _digit_variants(line: str, rng: random.Random, count: int) -> list[str]:
    """``line`` with its ASCII digits drawn anew: lines of the same shape."""
    return ["".join(rng.choice("0123456789") if "0" <= c <= "9" else c for c in line) for _ in range(count)]


# Lines whose shape (digits made 0) holds lines the redactor answers differently for:
# a card number whose Luhn check depends on its digits, a 2-6 digit that makes CARD_HINT
# start, a run whose entropy depends on its digits, a "0x" that makes a run hexadecimal.
SHAPE_TRAPS = [
    "charge 4111111111111111 ok",
    "charge 4111111111111117 ok",
    "charge 1111111111111111 ok",
    "charge 7111111111111111 ok",
    "card 4111 1111 1111 1111 ok",
    "card 1111 1111 1111 1111 ok",
    "amex 3782 822463 10005 ok",
    "amex 1782 822463 10005 ok",
    "session AbCdEfGh0000000000000000",
    "session AbCdEfGh2914177763170669",
    "key AbCdEfGh0000000000000000 found",
    "key AbCdEfGh2914177763170669 found",
    "at x@y AbCdEfGh0000000000000000",
    "at x@y AbCdEfGh2914177763170669",
    "at x@y charge 4111111111111117 ok",
    "at x@y charge 4111111111111111 ok",
    "peer QuorumServer@33557fe4 up",
    "mail user1@example.com sent",
    "token = 1234567 left",
    "token = 12345678 left",
    "reg 0xAbCdEf0123456789AbCdEf",
    "reg 1xAbCdEf0123456789AbCdEf",
    "job job_1445144423722_0020Job started",
    "token=1234567 ok",
    "token=7654321 ok",
    "id=AKIAIOSFODNN7EXAMPLE",
    "sid Zk3Qm9Tx2Lp7Wv4Nr8Hb6Yc1Jd5Gf0Sa",
    "sid Zk0Qm0Tx0Lp0Wv0Nr0Hb0Yc0Jd0Gf0Sa",
]


@pytest.mark.parametrize("memo_size", [200_000, 3])
def test_lines_of_one_shape_each_get_the_redactors_result_whatever_came_first(memo_size: int) -> None:
    rng = random.Random(11)
    lines = CORPUS + SHAPE_TRAPS + _random_lines(500, seed=5)
    lines += [variant for line in lines for variant in _digit_variants(line, rng, 3)]
    for order in range(3):
        random.Random(order).shuffle(lines)
        screen = ScreeningRedactor(memo_size=memo_size)
        assert [screen.redact(line) for line in lines] == [FULL.redact(line) for line in lines]


@pytest.mark.parametrize(
    ("clean", "secret"),
    [
        ("charge 4111111111111117 ok", "charge 4111111111111111 ok"),
        ("charge 1111111111111111 ok", "charge 4111111111111111 ok"),
        ("card 1111 1111 1111 1111 ok", "card 4111 1111 1111 1111 ok"),
        ("reg 0xAbCdEf0123456789AbCdEf", "reg 1xAbCdEf0123456789AbCdEf"),
        ("session AbCdEfGh0000000000000000", "session AbCdEfGh2914177763170669"),
        ("key AbCdEfGh0000000000000000 found", "key AbCdEfGh2914177763170669 found"),
        ("at x@y AbCdEfGh0000000000000000", "at x@y AbCdEfGh2914177763170669"),
        ("at x@y charge 4111111111111117 ok", "at x@y charge 4111111111111111 ok"),
    ],
)
def test_a_clean_line_does_not_pass_a_secret_of_its_shape(clean: str, secret: str) -> None:
    assert not FULL.redact(clean).changed
    assert FULL.redact(secret).changed
    screen = ScreeningRedactor()
    assert screen.redact(clean) == FULL.redact(clean)
    assert screen.redact(secret) == FULL.redact(secret)


def test_a_line_of_a_known_shape_passes_with_other_digits() -> None:
    screen = ScreeningRedactor()
    first = "Receiving block blk_-1608999687919862906 src: /10.250.19.102:54106 dest: /10.250.19.102:50010"
    assert screen.passes(first, first.split())
    again = "Receiving block blk_-7608999687919862901 src: /10.250.11.109:54166 dest: /10.250.11.107:50011"
    assert screen._shapes == {first.encode().translate(bytes.maketrans(b"123456789", b"0" * 9))}
    assert screen.passes(again, again.split())


def test_a_line_the_full_scan_finds_clean_teaches_the_screen_its_shape() -> None:
    screen = ScreeningRedactor()
    line = "peer QuorumServer@33557fe4 up"  # "@": only the full scan can tell it is clean
    assert not screen.passes(line, line.split())
    assert screen.redact(line) == FULL.redact(line)
    other = "peer QuorumServer@91337fe0 up"
    assert screen.passes(other, other.split())


def test_the_line_literals_are_the_token_screens_and_all_are_found() -> None:
    # The redactor's pre-filter literals (see Redactor.redact), lowered, "://" aside.
    literals = {"@", "eyj", "-----begin", "bearer", "authoriz"}
    assert set(LINE_LITERALS) == literals | {"pass", "pwd", "secret", "token", "key", "cred"}
    rng = random.Random(3)
    for literal in LINE_LITERALS:
        assert _has_literal(f"x {literal} y") and _has_literal(literal)
    for _ in range(2000):
        text = "".join(rng.choices("abcdekoprstwyzj@-gin ", k=rng.randint(0, 12)))
        assert _has_literal(text) == any(literal in text for literal in LINE_LITERALS)


def test_a_card_place_in_a_shape_is_wherever_card_hint_can_match_a_line_of_it() -> None:
    rng = random.Random(4)
    zero = bytes.maketrans(b"123456789", b"0" * 9)
    for _ in range(20_000):
        text = "".join(rng.choices("0123456789 -.a_/(", k=rng.randint(1, 24)))
        if p.CARD_HINT.search(text):
            assert _CARD_PLACE.search(text.encode().translate(zero))


def test_new_tokens_checked_together_get_the_flags_they_get_one_by_one() -> None:
    rng = random.Random(6)
    alphabet = "0123456789" * 3 + "-_.+/(:=@ abxAZ"
    for _ in range(3000):
        tokens = {"".join(rng.choices(alphabet, k=rng.randint(1, 14))) for _ in range(rng.randint(1, 4))}
        tokens = {t for word in tokens for t in word.split()}
        if not tokens:
            continue
        together, alone = ScreeningRedactor(), ScreeningRedactor()
        ok = together._learn(set(tokens))
        assert ok == alone._learn_each(sorted(tokens)) or not ok
        if ok:
            assert (together._clean, together._flags) == (alone._clean, alone._flags)
