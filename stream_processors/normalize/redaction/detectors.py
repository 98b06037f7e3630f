"""Detectors: each finds candidate secret spans of one family in a line of text.

A detector is ``(text, lower, out) -> None``: ``lower`` is ``text`` lowercased with the
same length and offsets (computed once per call); candidates are appended to ``out`` as
``(kind, start, end)``. The redactor calls a detector only when a cheap literal test
(``://``, ``eyJ``, a key word...) says it can match -- that pre-filter is what keeps
redaction cheap on the hot path; the two scans that have no literal (card numbers and
token runs) start with a narrow regular expression instead. Detectors may return
overlapping candidates; the redactor merges them. None of them raises.
"""

from __future__ import annotations

from collections.abc import Callable

from . import patterns as p
from .entropy import looks_random, luhn_ok
from .model import SecretKind

Candidate = tuple[SecretKind, int, int]
Detector = Callable[[str, str, list[Candidate]], None]

KEY_VALUE_KINDS = frozenset(
    {
        SecretKind.PASSWORD,
        SecretKind.SECRET,
        SecretKind.TOKEN,
        SecretKind.API_KEY,
        SecretKind.AWS_SECRET_KEY,
    }
)
TOKEN_RUN_KINDS = frozenset(p.VENDOR_KINDS.values()) | {
    SecretKind.HIGH_ENTROPY,
    SecretKind.AWS_SECRET_KEY,
}

_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_VALUE_STOP = frozenset(" \t\r\n,;&\"'`)]}>")
_PLACEHOLDER_PREFIXES = ("<SECRET:", "${", "{{", "%(", "***", "<redacted", "[redacted", "[filtered")


def pem(text: str, lower: str, out: list[Candidate]) -> None:
    for m in p.PEM_BLOCK.finditer(text):
        out.append((SecretKind.PRIVATE_KEY, m.start(), m.end()))


def url_password(text: str, lower: str, out: list[Candidate]) -> None:
    for m in p.URL_USERINFO.finditer(text):
        if not m["pw"].startswith(_PLACEHOLDER_PREFIXES):
            out.append((SecretKind.URL_PASSWORD, m.start("pw"), m.end("pw")))


def auth_header(text: str, lower: str, out: list[Candidate]) -> None:
    for m in p.AUTH_HEADER.finditer(text):
        val = m["val"]
        if len(val) < 8 or (val.isalpha() and val.islower()):
            continue  # "Bearer authentication failed", "Authorization: none"
        scheme = (m["scheme"] or "").lower()
        kind = SecretKind.BASIC_AUTH if scheme == "basic" else SecretKind.BEARER_TOKEN
        out.append((kind, m.start("val"), m.end("val")))


def jwt(text: str, lower: str, out: list[Candidate]) -> None:
    for m in p.JWT.finditer(text):
        out.append((SecretKind.JWT, m.start(), m.end()))


def _key_kind(word: str, key: str) -> SecretKind:
    if "aws" in key and "secret" in key:
        return SecretKind.AWS_SECRET_KEY
    if "pass" in word or word == "pwd":
        return SecretKind.PASSWORD
    if word.startswith("token"):
        return SecretKind.TOKEN
    if word.startswith(("api", "access", "app", "client")):
        return SecretKind.API_KEY
    return SecretKind.SECRET  # secret, *_key for private/signing/..., credentials


def _value_span(text: str, pos: int) -> tuple[int, int]:
    """The value starting at ``pos``: inside quotes when quoted, else up to a delimiter."""
    n = len(text)
    quote = ""
    if text.startswith('\\"', pos):
        quote = '\\"'
    elif pos < n and text[pos] in "\"'":
        quote = text[pos]
    if quote:
        pos += len(quote)
        end = pos
        while end < n and not text.startswith(quote, end):
            end += 2 if text[end] == "\\" and len(quote) == 1 else 1
        return pos, min(end, n)
    end = pos
    while end < n and text[end] not in _VALUE_STOP:
        end += 1
    return pos, end


def key_value(text: str, lower: str, out: list[Candidate]) -> None:
    for m in p.KEY_VALUE.finditer(lower):
        start = m.start()
        if start and text.startswith("<SECRET:", start - 1):
            continue  # our own placeholder, from an earlier pass
        while start > 0 and text[start - 1] in _KEY_CHARS:
            start -= 1
        key = lower[start : m.end("word")]
        if not m["sep"].strip() and not key.startswith("--"):
            continue  # whitespace separates a value only after a CLI flag: --password x
        vstart, vend = _value_span(text, m.end())
        value = text[vstart:vend]
        if vend == vstart or value.startswith(_PLACEHOLDER_PREFIXES):
            continue
        bare = vstart == m.end()
        if bare and (value.lower() in p.NOT_A_VALUE or set(value) <= {"*", "x", "X", "."}):
            continue
        word = m["word"].lower()
        if value.lower() == word:
            continue  # "Token: Token { kind: ContainerToken }" -- a type name, not a value
        kind = _key_kind(word, key)
        if kind is not SecretKind.PASSWORD and bare and value.isdigit() and len(value) < 8:
            continue  # token=3, api_key: 1 -- counts and ids, not credentials
        out.append((kind, vstart, vend))


def credit_card(text: str, lower: str, out: list[Candidate]) -> None:
    hint = p.CARD_HINT.search(text)
    if hint is None:
        return
    for m in p.CARD.finditer(text, hint.start()):
        digits = m.group().replace(" ", "").replace("-", "")
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            out.append((SecretKind.CREDIT_CARD, m.start(), m.end()))


def email(text: str, lower: str, out: list[Candidate]) -> None:
    for m in p.EMAIL_DOMAIN.finditer(text):
        start = at = m.start()
        while start > 0 and text[start - 1] in p.EMAIL_LOCAL_CHARS:
            start -= 1
        while start < at and not text[start].isalnum():
            start += 1  # a local part starts with a letter or digit
        if start == at:
            continue
        scheme = text.rfind("://", 0, start)
        if scheme >= 0 and not any(c in text[scheme + 3 : start] for c in "/?# \t"):
            continue  # user@host inside a URL authority, not an address
        out.append((SecretKind.EMAIL, start, m.end()))


def token_runs(kinds: frozenset[SecretKind], min_length: int, threshold: float) -> Detector:
    """A detector for secrets that are one long run of base64-ish characters.

    One scan finds every run of at least ``RUN_MIN`` characters; inside a run it looks for
    vendor tokens and AWS access key ids by shape, and judges a run of ``min_length`` or
    more that matched no shape with :func:`looks_random` -- a 40-character base64 run is
    reported as an AWS secret access key, anything else as ``HIGH_ENTROPY``. Only
    ``kinds`` are reported (the redactor filters too; this skips needless work).
    """
    vendors = bool(kinds & frozenset(p.VENDOR_KINDS.values()))
    entropy = bool(kinds & {SecretKind.HIGH_ENTROPY, SecretKind.AWS_SECRET_KEY})

    def detect(text: str, lower: str, out: list[Candidate]) -> None:
        pos = 0
        # findall is markedly cheaper than finditer; offsets are recovered only for the
        # rare run that holds a secret (see _locate).
        for tok in p.RUN.findall(" " + text):
            if tok.lower() == tok:
                continue  # no capital letter: ids, hex, paths, words -- and no vendor token
            start = -1
            if vendors and p.VENDOR_HINT.search(tok):
                start = _locate(text, tok, pos)
                pos = start + len(tok)
                for v in p.VENDOR.finditer(tok):
                    out.append((p.VENDOR_KINDS[v.lastgroup or ""], start + v.start(), start + v.end()))
            if entropy and len(tok) >= min_length and looks_random(tok, threshold):
                if start < 0:
                    start = _locate(text, tok, pos)
                    pos = start + len(tok)
                aws = p.AWS_SECRET_SHAPE.fullmatch(tok)
                kind = SecretKind.AWS_SECRET_KEY if aws else SecretKind.HIGH_ENTROPY
                out.append((kind, start, start + len(tok)))

    return detect


def _locate(text: str, tok: str, pos: int) -> int:
    """Offset of the maximal run ``tok`` at or after ``pos``: an occurrence with no run
    character on either side (a bare ``find`` could land inside a longer earlier run)."""
    n, size = len(tok), len(text)
    start = text.find(tok, pos)
    while start >= 0:
        end = start + n
        if (start == 0 or text[start - 1] not in p.RUN_CHARS) and (
            end == size or text[end] not in p.RUN_CHARS
        ):
            return start
        start = text.find(tok, start + 1)
    return text.find(tok)  # not reached for runs found by RUN; keeps offsets valid
