"""A per-token screen in front of the :class:`~stream_processors.redaction.Redactor`.

Almost every log line holds no secret, and the redactor's cost on such a line is its
whole-line scans (token runs, card numbers) plus the literal pre-filters. Every trigger
the redactor has is confined to one whitespace-separated token -- a literal such as
``@``, ``eyJ`` or ``token``, a base64-ish run, the start of a card number -- except a card
number written in groups, which spans tokens only after a token that ends like its
first group(s) (``4111``, ``(41111111``, ``4111-1111``) and before one that starts with
a digit. Log lines repeat their tokens endlessly, so the screen classifies each
*distinct* token once (memoised); a line made only of known-clean tokens is passed by
one set test, and the full redactor runs only for a line with a suspicious token. The
result is exactly ``Redactor.redact(text)``: a line the screen passes is one on which
every detector would find nothing (the unit tests check this on the redaction corpora).
"""

from __future__ import annotations

import re

from stream_processors.redaction import Redacted, Redactor
from stream_processors.redaction import detectors as d
from stream_processors.redaction import patterns as p

# The redactor's pre-filter literals (see Redactor.redact), searched in the lowered
# token (so "eyJ" and "-----BEGIN" match a little more than they need to), with "://"
# left out: the URL-password detector needs an "@" too, and "@" is screened.
_LITERALS = re.compile("@|eyj|-----begin|bearer|authoriz|pass|pwd|secret|token|key|cred")

_SUSPECT = 1  # the token alone can trigger a detector
_CARD_HEAD = 2  # ends like the first group(s) of a card number that the next token continues
# What CARD_HINT can match before its first space: 4 digits starting with 2-6, or 8, or
# 4-4, with no word character, '.', '+' or '-' in front (its look-behind).
_CARD_HEAD_RE = re.compile(r"(?:^|[^\w.+-])[2-6]\d{3}(?:\d{4}|-\d{4})?\Z")


class ScreeningRedactor:
    """Same contract and results as :class:`Redactor`, cheaper on lines without secrets.

    Not thread-safe (the token memo); one per normaliser. Never raises, never blocks.
    """

    __slots__ = ("_clean", "_memo", "_memo_size", "_runs", "redactor")

    def __init__(self, redactor: Redactor | None = None, memo_size: int = 200_000) -> None:
        self.redactor = redactor or Redactor()
        cfg = self.redactor.config
        on = cfg.enabled
        self._runs = (
            d.token_runs(on, cfg.min_token_length, cfg.entropy_threshold) if on & d.TOKEN_RUN_KINDS else None
        )
        self._memo: dict[str, int] = {}
        # Tokens neither suspect nor a card head: a line of only these is clean.
        self._clean: set[str] = set()
        self._memo_size = memo_size

    def redact(self, text: str) -> Redacted:
        """``Redactor.redact(text)``, skipping the full scan when no token is suspicious."""
        tokens = text.split()
        if self._clean.issuperset(tokens):  # the common case, tested at C speed
            return Redacted(text)
        memo = self._memo
        previous = 0
        for token in tokens:
            flags = memo.get(token)
            if flags is None:
                flags = self._classify(token)
            if flags & _SUSPECT or (previous and token[0].isdecimal()):
                return self.redactor.redact(text)  # a secret may be here: the full scan
            previous = flags
        return Redacted(text)

    def _classify(self, token: str) -> int:
        flags = 0
        lower = token.lower()
        if _LITERALS.search(lower) or p.CARD_HINT.search(token):
            flags = _SUSPECT
        elif self._runs is not None and len(token) >= p.RUN_MIN and lower != token:
            found: list[d.Candidate] = []  # a run needs RUN_MIN characters and a capital
            self._runs(token, lower, found)
            if found:
                flags = _SUSPECT
        if token[-1].isdecimal() and _CARD_HEAD_RE.search(token):
            flags |= _CARD_HEAD
        if len(self._memo) >= self._memo_size:
            self._memo.clear()
            self._clean.clear()
        self._memo[token] = flags
        if not flags:
            self._clean.add(token)
        return flags
