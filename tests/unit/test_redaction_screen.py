"""The redaction screen gives exactly the Redactor's result, and skips it where it may."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from stream_processors.redaction import Redactor
from stream_processors.redaction_screen import ScreeningRedactor

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


def test_only_the_ascii_space_is_both_whitespace_and_printable() -> None:
    # The screen checks token pairs with a regex over " " only in printable lines.
    both = [c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace() and c.isprintable()]
    assert both == [" "]
