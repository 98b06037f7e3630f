"""A per-token screen in front of the :class:`~stream_processors.redaction.Redactor`.

Almost every log line holds no secret, and the redactor's cost on such a line is its
whole-line scans (token runs, card numbers) plus the literal pre-filters. Every trigger
the redactor has is confined to one whitespace-separated token -- a literal such as
``@``, ``eyJ`` or ``token``, a base64-ish run, the start of a card number -- with two
exceptions, both of which need a particular *next* token:

* a card number written in groups spans tokens only after a token that ends like its
  first group(s) (``4111``, ``(41111111``, ``4111-1111``) and before one that starts with
  a digit -- so only where the line holds a digit, a space and a digit;
* a key word at the end of a token (``password``, ``"api_key"``) starts a key-value
  pair only before a token that starts with ``=`` or ``:`` (``password = x``); before any
  other token the key-value detector ignores it (whitespace separates a value only
  after a ``--flag``, and a token holding ``--`` stays suspicious).

A key word *inside* a token is harmless unless the key-value pattern matches right
there (``password=x``, ``token:``); ``pass;`` or ``bypassed`` are not. The key-value
pattern itself decides this: a match in the token alone makes it suspicious; a match
only once `` x`` is appended (a key word at the token's end) makes it a tail; no match
either way means no match can start in this token, whatever follows it. This is
checked for ASCII tokens only (the redactor lowers a line with length-changing
characters ASCII-only, so a non-ASCII token stays suspicious).

Log lines repeat their tokens endlessly, so the screen classifies each *distinct* token
once (memoised). A line made only of known-clean tokens is passed by one set test; a
line of tokens that are clean but for a card head or a trailing key word, by a second
set test and one regex that finds no digit-space-digit and no whitespace before ``=``
or ``:``; otherwise a walk over the tokens decides, and the full redactor runs only for
a line with a suspicious token or pair. The result is exactly
``Redactor.redact(text)``: a line the screen passes is one on which every detector
would find nothing (the unit tests check this on the redaction corpora and on
constructed lines).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from stream_processors.redaction import Redacted, Redactor
from stream_processors.redaction import detectors as d
from stream_processors.redaction import patterns as p

# The redactor's pre-filter literals (see Redactor.redact), searched in the lowered
# token (so "eyJ" and "-----BEGIN" match a little more than they need to), with "://"
# left out: the URL-password detector needs an "@" too, and "@" is screened. The
# key-value detector's literals are apart: their tokens are looked at more closely.
_LITERALS = re.compile("@|eyj|-----begin|bearer|authoriz")
_KV_LITERALS = re.compile("pass|pwd|secret|token|key|cred")

_SUSPECT = 1  # the token alone can trigger a detector
_CARD_HEAD = 2  # ends like the first group(s) of a card number that the next token continues
_KV_TAIL = 4  # ends with a key word: a key-value pair if the next token starts with = or :
# What CARD_HINT can match before its first space, at the end of a token: 4 digits
# starting with 2-6, or 8, or 4-4, with no word character, '.', '+' or '-' in front (its
# look-behind). At most 9 digits and dashes, so a token is searched in its last 9 only.
# Written like CARD_HINT, look-behind after the first digit, so the scan skips to 2-6.
_HEAD = re.compile(r"[2-6](?<![\w.+-].)\d{3}(?:\d{4}|-\d{4})?(?!\S)")
# Where a pair of tokens can matter, in a line whose only whitespace is " ": CARD_HINT
# separates groups by one space (between digits), and the key-value separator is "=",
# "=>" or ":" after optional whitespace. A literal first character keeps the scan fast.
_PAIR = re.compile(r" (?:(?<=\d )\d|[=:])")


class ScreeningRedactor:
    """Same contract and results as :class:`Redactor`, cheaper on lines without secrets.

    Not thread-safe (the token memo); one per normaliser. Never raises, never blocks.
    """

    __slots__ = ("_clean", "_memo", "_memo_size", "_plain", "_runs", "redactor")

    def __init__(self, redactor: Redactor | None = None, memo_size: int = 200_000) -> None:
        self.redactor = redactor or Redactor()
        cfg = self.redactor.config
        on = cfg.enabled
        self._runs = (
            d.token_runs(on, cfg.min_token_length, cfg.entropy_threshold) if on & d.TOKEN_RUN_KINDS else None
        )
        self._memo: dict[str, int] = {}
        # Tokens with no flag: a line of only these is clean.
        self._clean: set[str] = set()
        # Tokens that are not suspect (clean, card heads, key words at the end): a line
        # of only these is clean unless _PAIR finds a pair that needs a closer look.
        self._plain: set[str] = set()
        self._memo_size = memo_size

    def redact(self, text: str) -> Redacted:
        """``Redactor.redact(text)``, skipping the full scan when no token is suspicious."""
        if self.passes(text, text.split()):
            return Redacted(text)
        return self.redactor.redact(text)  # a secret may be here: the full scan

    def passes(self, text: str, tokens: list[str]) -> bool:
        """True when ``Redactor.redact(text)`` certainly finds nothing; False when the full
        scan must decide. ``tokens`` must be ``text.split()``: a caller that splits the
        line anyway (the normaliser, for its masker) splits it only once."""
        clean, plain = self._clean, self._plain
        if clean.issuperset(tokens):  # the common case, tested at C speed
            return True
        if not plain.issuperset(tokens):  # new tokens, or a suspect one
            new = set(tokens).difference(self._memo)
            if not new or not self._learn(new):
                return False
            if not plain.issuperset(tokens):  # a known suspect one, or the memo was cleared
                return self._walk(tokens)
            if clean.issuperset(tokens):
                return True
        # Clean but for card heads and key-word tails: only a pair of tokens can matter.
        # A printable line has no whitespace but " ", so _PAIR sees every such pair.
        if text.isprintable() and _PAIR.search(text) is None:
            return True
        return self._walk(tokens)

    def _walk(self, tokens: list[str]) -> bool:
        """``passes`` token by token, looking at each pair: the exact, slower check."""
        memo = self._memo
        previous = 0
        for token in tokens:
            flags = memo.get(token)
            if flags is None:
                self._learn((token,))
                flags = memo.get(token, _SUSPECT)
            if flags & _SUSPECT:
                return False
            if previous and (
                (previous & _CARD_HEAD and token[0].isdecimal()) or (previous & _KV_TAIL and token[0] in "=:")
            ):
                return False
            previous = flags
        return True

    def _learn(self, tokens: Iterable[str]) -> bool:
        """Classify and memoise new ``tokens``; False as soon as one is suspect."""
        memo, clean, plain = self._memo, self._clean, self._plain
        if len(memo) >= self._memo_size:
            self._forget()
        for token in tokens:
            lower = token.lower()
            if _LITERALS.search(lower) or p.CARD_HINT.search(token):
                flags = _SUSPECT
            else:
                flags = _key_word_flags(token, lower) if _KV_LITERALS.search(lower) else 0
                if self._runs is not None and len(token) >= p.RUN_MIN and lower != token:
                    # a run needs RUN_MIN characters and a capital
                    flags |= _SUSPECT if _has_run(self._runs, token, lower) else 0
            if flags & _SUSPECT:
                memo[token] = flags
                return False
            if token[-1].isdecimal() and _HEAD.search(token, max(0, len(token) - 9)):
                flags |= _CARD_HEAD
            memo[token] = flags
            plain.add(token)
            if not flags:
                clean.add(token)
        return True

    def _forget(self) -> None:
        self._memo.clear()
        self._clean.clear()
        self._plain.clear()


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
