"""Cheap statistical tests that tell random-looking secrets from identifiers.

Pure functions over short strings; none of them raises. The judgement for a token with no
key around it is :func:`looks_random`: mixed letter case *and* digits, not a hex value (git
SHAs, UUIDs, addresses, pod hashes), not base64 of readable text, not a camelCase or
path-like identifier, and a Shannon entropy at or above the threshold.
"""

from __future__ import annotations

import binascii
import itertools
import math
import re
from collections import Counter

_HEXISH = re.compile(r"(?:0[xX])?[0-9a-fA-F]+(?:[-_:][0-9a-fA-F]+)*")
_DIGIT = re.compile(r"[0-9]")
# Words inside identifiers (``Invoice``, ``service``): they cover most of a camelCase or
# snake_case name but under 3% of a random 32-character key.
_WORD = re.compile(r"[A-Z]?[a-z]{3,}")
_CLASS_MAP = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
    "U" * 26 + "l" * 26 + "d" * 10,
)
_PRINTABLE = frozenset(range(0x20, 0x7F)) | {0x09, 0x0A, 0x0D}


def shannon_entropy(s: str) -> float:
    """Shannon entropy of ``s`` in bits per character (0.0 for the empty string)."""
    n = len(s)
    if n == 0:
        return 0.0
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


def luhn_ok(digits: str) -> bool:
    """True when the decimal string ``digits`` passes the Luhn checksum."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def is_base64_text(token: str) -> bool:
    """True when ``token`` is standard or URL-safe base64 of mostly printable ASCII text.

    Such a token is an encoded *word or sentence* (``aGVsbG8gd29ybGQ=``), not a key; real
    keys decode to random bytes. Basic-auth values are caught by their header, not here.
    """
    body = token.rstrip("=")
    if len(body) % 4 == 1:
        return False
    padded = body.replace("-", "+").replace("_", "/") + "=" * (-len(body) % 4)
    try:
        raw = binascii.a2b_base64(padded, strict_mode=True)
    except (binascii.Error, ValueError):
        return False
    if not raw:
        return False
    printable = sum(1 for b in raw if b in _PRINTABLE)
    return printable >= 0.95 * len(raw)


def _class_changes(token: str) -> float:
    """Share of adjacent character pairs that switch class (upper/lower/digit/other).

    Random keys switch at roughly 0.6; identifiers such as ``DFSClient_NONMAPREDUCE_15``
    or ``job_1445144423722_0020Job`` stay within a class for long runs (about 0.2).
    """
    classes = token.translate(_CLASS_MAP)
    changes = sum(1 for a, b in itertools.pairwise(classes) if a != b)
    return changes / (len(token) - 1)


def _is_path(token: str) -> bool:
    """Two or more slashes and a leading slash or an all-lowercase directory name.

    Base64 keys contain slashes too, but rarely two, and almost never with a short
    lowercase word between them.
    """
    segments = token.split("/")
    if len(segments) < 3:
        return False
    return not segments[0] or any(s.isalpha() and s.islower() for s in segments[1:-1])


def _is_identifier_like(token: str) -> bool:
    """Paths, camelCase / snake_case names: mostly words, or few class switches."""
    if _is_path(token):
        return True
    if sum(len(w) for w in _WORD.findall(token)) >= 0.6 * len(token):
        return True
    return _class_changes(token) < 0.3


def digits_may_decide(token: str) -> bool:
    """False when :func:`looks_random` gives every token that differs from ``token`` only
    in the values of its digits (same length, digits in the same places) the answer it
    gives ``token``: when that answer rests on letter case, digit places and words alone
    (as for ``job_1445144423722_0020Job``), not on entropy or base64 decoding. True when
    the digits themselves may decide."""
    if token.lower() == token or token.upper() == token or not _DIGIT.search(token):
        return False
    if _HEXISH.fullmatch(token) and not token.startswith(("0x", "0X")):  # a "0x" needs that 0
        return False
    return not _is_identifier_like(token)


def looks_random(token: str, threshold: float) -> bool:
    """True when a key-less ``token`` (already long enough) should be treated as a secret.

    ``threshold`` is the minimum Shannon entropy in bits per character. For tokens shorter
    than 32 characters it is scaled down in proportion to ``log2(len)`` versus ``log2(32)``
    because a short string cannot reach a long one's entropy.
    """
    if token.lower() == token or token.upper() == token or not _DIGIT.search(token):
        return False  # needs upper, lower and digits: rules out hex, words, CONSTANTS
    if _HEXISH.fullmatch(token) or _is_identifier_like(token):
        return False
    if is_base64_text(token):
        return False
    n = len(token)
    needed = threshold if n >= 32 else threshold * math.log2(n) / 5.0
    return shannon_entropy(token) >= needed
