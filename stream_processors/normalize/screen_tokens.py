"""The token and line tests of the redaction screen (:mod:`stream_processors.normalize.screen`):
the pre-filter literals, the digit classes and card places of line shapes, and the per-token
flags.  Kept apart from the screen's memo logic; the screen's docstring explains each rule.
"""

from __future__ import annotations

import re
import string

from stream_processors.normalize.redaction import SecretKind
from stream_processors.normalize.redaction import detectors as d
from stream_processors.normalize.redaction import patterns as p

# The redactor's pre-filter literals (see Redactor.redact), searched in the lowered
# token (so "eyJ" and "-----BEGIN" match a little more than they need to), with "://"
# left out: the URL-password detector needs an "@" too, and "@" is screened. The
# key-value detector's literals are apart: their tokens are looked at more closely.
_LITERALS = re.compile("@|eyj|-----begin|bearer|authoriz")
_KV_LITERALS = re.compile("pass|pwd|secret|token|key|cred")
# Both, as searched in a lowered line by _has_literal, and in the bytes of a lowered
# batch of new tokens.
LINE_LITERALS = (*_LITERALS.pattern.split("|"), *_KV_LITERALS.pattern.split("|"))
_ANY_LITERAL = re.compile("|".join(LINE_LITERALS).encode())

_SUSPECT = 1  # the token alone can trigger a detector
_CARD_HEAD = 2  # ends like the first group(s) of a card number that the next token continues
_KV_TAIL = 4  # ends with a key word: a key-value pair if the next token starts with = or :
# What CARD_HINT can match before its first space, at the end of a token: 4 digits
# starting with 2-6, or 8, or 4-4, with no word character, '.', '+' or '-' in front (its
# look-behind). At most 9 digits and dashes, so a token is searched in its last 9 only.
# Written like CARD_HINT, look-behind after the first digit, so the scan skips to 2-6.
_HEAD = re.compile(r"[2-6](?<![\w.+-].)\d{3}(?:\d{4}|-\d{4})?(?!\S)")

# Character classes of an ASCII batch of new tokens, one byte each: 'h' a digit 2-6, 'd'
# another digit, 'U' a capital, 'w' the rest of [\w.+], '-' and ' ' themselves, '!' the
# rest. CARD_HINT and _HEAD start with a 2-6 digit whose previous character is not in
# [\w.+-] -- a ' ' or '!' here (the batch gets a leading space for its start) -- then
# take digits and [ -] separators, and _HEAD ends before whitespace or the end; over the
# classes they become one pattern that starts at a ' ' or '!' (the originals stop at
# every 2-6 digit, slow in the digit-heavy text of new tokens) and matches exactly where
# they do. A match with group "card" is a CARD_HINT match (or one that spans two tokens
# of the batch: that only sends the batch the slow way); any other ends a head. No match
# of either can start inside a head match (a digit or '-' precedes each position there),
# so searching on from the end of one misses none.
_CLASSES = bytearray(b"!" * 256)
for _chars, _cls in (
    ("23456", "h"),
    ("01789", "d"),
    (string.ascii_uppercase, "U"),
    (string.ascii_lowercase + "_.+", "w"),
    ("-", "-"),
    (" ", " "),
):
    for _c in _chars.encode():
        _CLASSES[_c] = ord(_cls)
_CLASS_TABLE = bytes(_CLASSES)
_CARD_OR_HEAD = re.compile(
    rb"[ !]h[hd]{3}(?:(?P<card>[ -]?[hd]{4}[ -]?[hd]{4}|[ -][hd]{6})|(?:[hd]{4}|-[hd]{4})?(?![^ ]))"
)

# Line shapes (see the module docstring): every digit '0'; where CARD_HINT could match
# some line of the shape, every 2-6 digit '2' instead. _CARD_PLACE is CARD_HINT with any
# digit for its 2-6 one, over the first kind of shape (bytes: \w is ASCII, as the ASCII
# line's own), written to start at a literal "0000" (fast to find) and look back from
# there for the boundary CARD_HINT wants before its first digit.
_ZERO_DIGITS = bytes.maketrans(b"0123456789", b"0000000000")
_CARD_DIGITS = bytes.maketrans(b"0123456789", b"0022222000")
_CARD_PLACE = re.compile(rb"0000(?<![\w.+-]0000)(?:[ -]?0000[ -]?0000|[ -]000000)")
_ENTROPY_KINDS = frozenset({SecretKind.HIGH_ENTROPY, SecretKind.AWS_SECRET_KEY})
# Bounds of the shape and run memos: entries (a line takes ~100 bytes there), and the
# longest line or run memoised (a longer one is checked each time it comes).
SHAPE_MEMO_SIZE = 20_000
_LONGEST_MEMOISED = 1024


def _has_literal(lower: str) -> bool:
    """True when the lowered line holds one of :data:`LINE_LITERALS` (spelt out: a chain
    of ``in`` tests is faster than a regular expression here)."""
    return (
        "@" in lower
        or "eyj" in lower
        or "-----begin" in lower
        or "bearer" in lower
        or "authoriz" in lower
        or "pass" in lower
        or "pwd" in lower
        or "secret" in lower
        or "token" in lower
        or "key" in lower
        or "cred" in lower
    )


def _pairs_pass(tokens: list[str], marked: list[tuple[str, int]]) -> bool:
    """False when a card head in ``marked`` is followed by a token that starts with a
    digit, or a key-word tail by one that starts with ``=`` or ``:``."""
    last = len(tokens) - 1
    for token, flags in marked:
        i = -1
        for _ in range(tokens.count(token)):
            i = tokens.index(token, i + 1)
            if i < last:
                first = tokens[i + 1][0]
                if (flags & _CARD_HEAD and first.isdecimal()) or (flags & _KV_TAIL and first in "=:"):
                    return False
    return True


def _has_run(runs: d.Detector, text: str, lower: str) -> bool:
    found: list[d.Candidate] = []
    runs(text, lower, found)
    return bool(found)


def _key_word_flags(token: str, lower: str) -> int:
    """The flags of a token holding a key word (``pass``, ``token``...): suspect where
    the key-value pattern matches in it, a key-word tail where it would match with
    a next token, else none (see the module docstring)."""
    if not token.isascii() or p.KEY_VALUE.search(lower):
        return _SUSPECT
    if p.KEY_VALUE.search(lower + " x") is None:
        return 0
    # A CLI flag (--password x) takes a value after whitespace: the key (walked back
    # over key characters from the word) may start with "--" only if the token holds one.
    return _SUSPECT if "--" in lower else _KV_TAIL
