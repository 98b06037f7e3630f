"""Behaviour of the secret redactor: the corpora, then each kind on its own."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from stream_processors.normalize.redaction import (
    Finding,
    Redacted,
    RedactionConfig,
    Redactor,
    SecretKind,
    luhn_ok,
    shannon_entropy,
)
from stream_processors.normalize.redaction.entropy import digits_may_decide, looks_random

DATA = Path(__file__).resolve().parents[1] / "data" / "redaction"
REDACTOR = Redactor()


def _rows(name: str) -> list[list[str]]:
    rows = []
    for raw in (DATA / name).read_text(encoding="utf-8").splitlines():
        if raw and not raw.startswith("#"):
            rows.append(raw.split("\t"))
    return rows


SECRET_ROWS = _rows("secrets.txt")
LOOKALIKE_LINES = [row[0] for row in _rows("lookalikes.txt")]


def _leaks(secret: str, out: str) -> bool:
    """The secret, or any 12-character window of a long one, survives in ``out``."""
    if secret in out:
        return True
    return len(secret) >= 16 and any(secret[i : i + 12] in out for i in range(len(secret) - 11))


def _red(text: str, **config: object) -> str:
    redactor = Redactor(RedactionConfig(**config)) if config else REDACTOR  # type: ignore[arg-type]
    return redactor.redact(text).text


# --- corpora ---------------------------------------------------------------------------


def test_the_secret_corpus_is_large_and_every_line_names_its_secrets() -> None:
    assert len(SECRET_ROWS) >= 120
    assert all(len(row) >= 2 and all(s in row[0] for s in row[1:]) for row in SECRET_ROWS)


def test_the_lookalike_corpus_is_large() -> None:
    assert len(LOOKALIKE_LINES) >= 120


def test_no_secret_from_the_corpus_survives_redaction() -> None:
    leaked = [
        (row[0], secret)
        for row in SECRET_ROWS
        for secret in row[1:]
        if _leaks(secret, REDACTOR.redact(row[0]).text)
    ]
    assert leaked == []


def test_every_line_of_the_secret_corpus_is_changed_and_reports_findings() -> None:
    unchanged = [row[0] for row in SECRET_ROWS if not REDACTOR.redact(row[0]).changed]
    assert unchanged == []


def test_no_lookalike_line_is_changed() -> None:
    changed = [line for line in LOOKALIKE_LINES if REDACTOR.redact(line).text != line]
    assert changed == []


def test_redacting_redacted_output_changes_nothing() -> None:
    for row in SECRET_ROWS:
        once = REDACTOR.redact(row[0]).text
        assert REDACTOR.redact(once).text == once


# --- result contract -------------------------------------------------------------------


def test_a_clean_line_comes_back_as_the_same_string_with_no_findings() -> None:
    line = "GET /healthz 200 1ms"
    result = REDACTOR.redact(line)
    assert result == Redacted(line)
    assert result.text is line
    assert not result.changed


def test_findings_give_kind_and_input_span_but_never_the_secret() -> None:
    line = "password=hunter2 user=bob"
    result = REDACTOR.redact(line)
    assert result.findings == (Finding(SecretKind.PASSWORD, 9, 16),)
    assert line[9:16] == "hunter2"
    assert "hunter2" not in repr(result)


def test_the_result_is_immutable() -> None:
    result = REDACTOR.redact("password=hunter2")
    with pytest.raises(AttributeError):
        result.text = "x"  # type: ignore[misc]


def test_the_placeholder_names_the_kind() -> None:
    assert SecretKind.AWS_ACCESS_KEY.placeholder == "<SECRET:aws_access_key>"


def test_an_empty_line_is_returned_unchanged() -> None:
    assert REDACTOR.redact("") == Redacted("")


# --- configuration ---------------------------------------------------------------------


def test_a_disabled_kind_is_left_in_place() -> None:
    line = "key AKIAIOSFODNN7EXAMPLE password=hunter2"
    only_pw = frozenset({SecretKind.PASSWORD})
    assert _red(line, kinds=only_pw) == "key AKIAIOSFODNN7EXAMPLE password=<SECRET:password>"


def test_emails_are_redacted_by_default_and_kept_when_switched_off() -> None:
    line = "invite sent to alice@example.com"
    assert _red(line) == "invite sent to <SECRET:email>"
    assert _red(line, emails=False) == line


def test_a_higher_entropy_threshold_lets_a_borderline_token_through() -> None:
    token = "Ab3dE5gH7jK9mN1pQ3sT5vW7"
    assert _red(f"sid {token}") == "sid <SECRET:high_entropy>"
    assert _red(f"sid {token}", entropy_threshold=6.0) == f"sid {token}"


def test_an_out_of_range_config_is_rejected() -> None:
    with pytest.raises(ValueError, match="entropy_threshold"):
        RedactionConfig(entropy_threshold=0)
    with pytest.raises(ValueError, match="min_token_length"):
        RedactionConfig(min_token_length=4)


# --- one kind at a time ----------------------------------------------------------------

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)


def test_aws_access_key_ids_are_redacted_whole() -> None:
    assert _red("using AKIAIOSFODNN7EXAMPLE now") == "using <SECRET:aws_access_key> now"
    assert _red("id=ASIAY34FZKBOKMUTVV7A") == "id=<SECRET:aws_access_key>"


def test_aws_secret_keys_are_redacted_after_their_key_and_standing_alone() -> None:
    expected = "aws_secret_access_key=<SECRET:aws_secret_key>"
    assert _red(f"aws_secret_access_key={AWS_SECRET}") == expected
    assert _red(f"signing with {AWS_SECRET}") == "signing with <SECRET:aws_secret_key>"


def test_bearer_tokens_keep_the_header_name_and_scheme() -> None:
    line = "Authorization: Bearer abc123DEF456ghi789"
    assert _red(line) == "Authorization: Bearer <SECRET:bearer_token>"


def test_basic_auth_credentials_are_redacted() -> None:
    line = "Authorization: Basic c3ZjOmh1bnRlcjI="
    assert _red(line) == "Authorization: Basic <SECRET:basic_auth>"


def test_the_word_bearer_in_prose_is_not_a_token() -> None:
    line = "Bearer authentication failed: Bearer token missing"
    assert _red(line) == line


def test_jwts_are_redacted_whole() -> None:
    assert _red(f"jwt {JWT} ok") == "jwt <SECRET:jwt> ok"


def test_url_passwords_are_redacted_keeping_user_and_host() -> None:
    line = "postgres://app:s3cr3t@db.internal:5432/orders"
    assert _red(line) == "postgres://app:<SECRET:url_password>@db.internal:5432/orders"
    assert _red("redis://:pw42@redis:6379") == "redis://:<SECRET:url_password>@redis:6379"


def test_urls_without_credentials_are_untouched() -> None:
    line = "GET https://api.example.com/v1/x?page=2 and ssh://git@github.com/org/repo"
    assert _red(line) == line


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("password=hunter2 user=bob", "password=<SECRET:password> user=bob"),
        ("DB_PASSWORD: hunter2", "DB_PASSWORD: <SECRET:password>"),
        ('{"password": "a b\\"c", "user": "x"}', '{"password": "<SECRET:password>", "user": "x"}'),
        ("pwd='x y' host=db", "pwd='<SECRET:password>' host=db"),
        ("--password hunter2 --host db", "--password <SECRET:password> --host db"),
        ("client_secret=abc123xyz", "client_secret=<SECRET:secret>"),
        ("access_token=abc123xyz&x=1", "access_token=<SECRET:token>&x=1"),
        ("X-Api-Key: abc123xyz", "X-Api-Key: <SECRET:api_key>"),
        ("apikey=abc123xyz", "apikey=<SECRET:api_key>"),
        ("private_key => abc123xyz", "private_key => <SECRET:secret>"),
    ],
)
def test_values_of_sensitive_keys_are_redacted_and_keys_kept(line: str, expected: str) -> None:
    assert _red(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        "password reset email sent",
        "token bucket refilled",
        "password=*** token=null api_key=${API_KEY}",
        "max_tokens=4096 password_min_length=12 token_type=bearer",
        '{"password": null, "token_count": 3}',
        "bypass=true check pass; user unknown",
    ],
)
def test_harmless_mentions_of_sensitive_words_are_untouched(line: str) -> None:
    assert _red(line) == line


def test_multiline_pem_private_keys_are_redacted_from_begin_to_end() -> None:
    text = (
        "loaded key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\nQ2x9\n"
        "-----END RSA PRIVATE KEY-----\ndone"
    )
    assert _red(text) == "loaded key:\n<SECRET:private_key>\ndone"


def test_a_pem_header_with_its_body_on_one_line_is_redacted_to_the_end() -> None:
    line = "bad key -----BEGIN PRIVATE KEY----- MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"
    assert _red(line) == "bad key <SECRET:private_key>"


def test_pem_public_keys_and_certificates_are_untouched() -> None:
    line = "-----BEGIN PUBLIC KEY----- MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE"
    assert _red(line, kinds=frozenset({SecretKind.PRIVATE_KEY})) == line


@pytest.mark.parametrize(
    "card", ["4111111111111111", "4111 1111 1111 1111", "5500-0055-5555-5559", "378282246310005"]
)
def test_luhn_valid_card_numbers_are_redacted(card: str) -> None:
    assert _red(f"card {card} ok") == "card <SECRET:credit_card> ok"


@pytest.mark.parametrize(
    "digits", ["4111111111111112", "order 1705312345678", "blk_-6952295868487656571", "3.14159265358979"]
)
def test_digit_runs_that_fail_luhn_or_look_like_ids_are_untouched(digits: str) -> None:
    assert _red(digits) == digits


def test_luhn_checksum_matches_known_numbers() -> None:
    assert luhn_ok("79927398713")
    assert not luhn_ok("79927398710")


@pytest.mark.parametrize(
    ("token", "kind"),
    [
        ("ghp_" + "a1B2c3D4e5" * 3 + "f6G7h8", SecretKind.GITHUB_TOKEN),
        ("xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", SecretKind.SLACK_TOKEN),
        ("sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc", SecretKind.STRIPE_KEY),
        ("AIza" + "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY", SecretKind.GOOGLE_API_KEY),
    ],
)
def test_vendor_tokens_are_recognised_by_their_prefix(token: str, kind: SecretKind) -> None:
    result = REDACTOR.redact(f"using {token} now")
    assert result.text == f"using {kind.placeholder} now"
    assert result.kinds == {kind}


def test_random_tokens_without_a_key_are_redacted_as_high_entropy() -> None:
    line = "sid Zk3Qm9Tx2Lp7Wv4Nr8Hb6Yc1Jd5Gf0Sa"
    assert _red(line) == "sid <SECRET:high_entropy>"


@pytest.mark.parametrize(
    "token",
    [
        "3f786850e387550fdab836ed7e6dc881de23001b",  # git SHA
        "550e8400-e29b-41d4-a716-446655440000",  # UUID
        "550E8400-E29B-41D4-A716-446655440000",  # upper-case UUID
        "api-7d9f8b6c5-x2x9k",  # k8s pod
        "0x7FFE3A2B1C4D5E6F",  # address
        "aGVsbG8gd29ybGQgdGhpcyBpcyBwbGFpbiB0ZXh0",  # base64 of plain words
        "InvoiceGeneratorServiceImpl2",  # identifier
        "DFSClient_NONMAPREDUCE_1537864556_1",  # identifier with digits
        "/home/ops/releases/Build2024Final/bin",  # path
    ],
)
def test_hashes_ids_identifiers_and_encoded_words_are_not_high_entropy(token: str) -> None:
    assert _red(f"value {token} seen") == f"value {token} seen"


def test_entropy_is_zero_for_one_symbol_and_maximal_for_distinct_ones() -> None:
    assert shannon_entropy("aaaa") == 0.0
    assert shannon_entropy("abcd") == pytest.approx(2.0)


def test_where_the_digits_may_not_decide_no_other_digits_change_the_verdict() -> None:
    rng = random.Random(8)
    alphabet = "0123456789" * 2 + "abcdefxyzABCDEFXYZ_-/+"
    undecided = 0
    for _ in range(4000):
        token = rng.choice(["", "0x", "0X"]) + "".join(rng.choices(alphabet, k=rng.randint(18, 40)))
        if digits_may_decide(token):
            undecided += 1
            continue
        verdict = looks_random(token, 3.5)
        for _ in range(5):
            other = "".join(rng.choice("0123456789") if c.isdigit() else c for c in token)
            assert looks_random(other, 3.5) == verdict, (token, other)
    assert 0 < undecided < 4000


@pytest.mark.parametrize(
    ("token", "decide"),
    [
        ("job_1445144423722_0020Job", False),  # an identifier whatever its digits
        ("DFSClient_NONMAPREDUCE_1537864556_1", False),
        ("0x7FFE3A2B1C4D5E6Fab", True),  # hexadecimal only with that 0
        ("AbCdEfGh0000000000000000", True),  # entropy: random with other digits
    ],
)
def test_digits_may_decide_a_verdict_by_entropy_or_a_hex_prefix(token: str, decide: bool) -> None:
    assert digits_may_decide(token) is decide


def test_a_token_at_the_start_and_inside_a_longer_run_are_located_exactly() -> None:
    token = "Zk3Qm9Tx2Lp7Wv4Nr8Hb6Yc1Jd5Gf0Sa"
    line = f"{token} x=xx{token}yy {token}"
    result = REDACTOR.redact(line)
    assert result.text == "<SECRET:high_entropy> x=<SECRET:high_entropy> <SECRET:high_entropy>"
    assert [line[f.start : f.end] for f in result.findings] == [token, f"xx{token}yy", token]


def test_overlapping_findings_merge_so_no_fragment_survives() -> None:
    result = REDACTOR.redact('password="my AKIAIOSFODNN7EXAMPLE pw" user=bob')
    assert result.text == 'password="<SECRET:password>" user=bob'
    assert len(result.findings) == 1


def test_non_ascii_text_keeps_offsets_aligned() -> None:
    line = "İstanbul user password=hunter2 ok"
    result = REDACTOR.redact(line)
    assert result.text == "İstanbul user password=<SECRET:password> ok"
    (finding,) = result.findings
    assert line[finding.start : finding.end] == "hunter2"
