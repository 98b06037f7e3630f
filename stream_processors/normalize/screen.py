"""A screen in front of the :class:`~stream_processors.normalize.redaction.Redactor`.

Almost every log line holds no secret, and the redactor's cost on such a line is its
whole-line scans (token runs, card numbers) plus the literal pre-filters. The screen
passes such a line without the redactor; a line it does not pass goes to the full scan.
Its answer is exactly ``Redactor.redact(text)``: a line it passes is one on which every
detector would find nothing (the unit tests check this on the redaction corpora and on
constructed lines). It decides in three steps, cheapest first.

**Line shapes.** Log lines repeat their text with other numbers in it, so the screen
remembers the *shapes* of the ASCII lines it passed -- the line with every digit made
``0`` -- and passes a line of a known shape with one look-up (a bounded memo; a line
that differs from one seen before only in its numbers hits it, the common case in a
stream, where a template's lines differ in ids, counts, times and addresses). This is
exact. A shape keeps every character but the digits, and their places, so a
detector can tell two lines of one shape apart only where it looks at the values of
digits, which every test does as "a digit" but three:

* ``CARD_HINT`` (and past it the card detector's Luhn check) wants a 2-6 digit first.
  A line the screen passes has no ``CARD_HINT`` match; where its shape has no place
  where one could start with other digits (``_CARD_PLACE``: a boundary, then digits like
  a card number's), no line of the shape has one. Otherwise the shape is keyed with its
  2-6 digits made ``2``, which is all ``CARD_HINT`` looks at.
* The token-run detector judges a run (``RUN_MIN`` or more) that has a capital by
  entropy and base64 decoding: a line with such a run whose verdict its digits may
  change (:func:`~stream_processors.normalize.redaction.entropy.digits_may_decide`) gives no
  shape. A run with no digit is the same text in every line of the shape, and vendor
  tokens and AWS key ids are found by character classes.
* The ``0x`` of a hexadecimal value: the same function leaves that to the digits.

A line that the screen leaves to the full scan, and that the scan finds clean, teaches
its shape on the same conditions (:meth:`ScreeningRedactor.full`): ``Foo@1a2b`` lines
pay for the full scan once, not each time.

**The line check.** A line of a new shape with none of the redactor's pre-filter
literals (``@``, ``eyJ``, ``-----BEGIN``, ``bearer``, ``authoriz`` and the key-value
words, searched in the lowered line) can only be matched by the card and token-run
detectors: the screen runs ``CARD_HINT`` where the shape has a card place, and has the
token-run detector judge each run with a capital on its own (memoised per run).

**The token screen**, for a line with a literal, or with non-ASCII text. Every trigger
the redactor has is confined to one whitespace-separated token -- a literal such as
``@``, ``eyJ`` or ``token``, a base64-ish run, the start of a card number -- with two
exceptions, both of which need a particular *next* token:

* a card number written in groups spans tokens only after a token that ends like its
  first group(s) (``4111``, ``(41111111``, ``4111-1111``) and before one that starts with
  a digit;
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

The token screen classifies each *distinct* token once (memoised, bounded): a line made
only of known-clean tokens passes by one set test; the new tokens of a line are first
checked together, joined, at C speed, and one by one only where that finds something;
a line with a card head or a key-word tail is passed by looking at the token after it.
"""

from __future__ import annotations

from collections.abc import Iterable

from mypy_extensions import mypyc_attr

from stream_processors.normalize.redaction import Redacted, Redactor
from stream_processors.normalize.redaction import detectors as d
from stream_processors.normalize.redaction import patterns as p
from stream_processors.normalize.redaction.entropy import digits_may_decide
from stream_processors.normalize.screen_tokens import (
    _ANY_LITERAL,
    _CARD_DIGITS,
    _CARD_HEAD,
    _CARD_OR_HEAD,
    _CARD_PLACE,
    _CLASS_TABLE,
    _ENTROPY_KINDS,
    _HEAD,
    _KV_LITERALS,
    _LITERALS,
    _LONGEST_MEMOISED,
    _SUSPECT,
    _ZERO_DIGITS,
    SHAPE_MEMO_SIZE,
    _has_literal,
    _has_run,
    _key_word_flags,
    _pairs_pass,
)


@mypyc_attr(allow_interpreted_subclasses=True)
class ScreeningRedactor:
    """Same contract and results as :class:`Redactor`, cheaper on lines without secrets.

    Not thread-safe (the memos); one per normaliser. Never raises, never blocks. The
    token memo holds at most ``memo_size`` tokens, the shape and run memos at most
    ``min(memo_size, SHAPE_MEMO_SIZE)`` lines and runs of up to 1 KiB; each is emptied
    when full.
    """

    __slots__ = (
        "_card_shapes",
        "_clean",
        "_entropy_min",
        "_flags",
        "_judged",
        "_memo_size",
        "_mixed",
        "_runs",
        "_shape_memo_size",
        "_shapes",
        "redactor",
    )

    def __init__(self, redactor: Redactor | None = None, memo_size: int = 200_000) -> None:
        self.redactor = redactor or Redactor()
        cfg = self.redactor.config
        on = cfg.enabled
        self._runs = (
            d.token_runs(on, cfg.min_token_length, cfg.entropy_threshold) if on & d.TOKEN_RUN_KINDS else None
        )
        # The shortest run the token-run detector judges by entropy (None: it never does).
        self._entropy_min = cfg.min_token_length if on & _ENTROPY_KINDS else None
        self._memo_size = memo_size
        self._shape_memo_size = min(memo_size, SHAPE_MEMO_SIZE)
        # Shapes of lines known clean: with every digit '0', and with the 2-6 digits '2'.
        self._shapes: set[bytes] = set()
        self._card_shapes: set[bytes] = set()
        # Runs with a capital that the token-run detector passes, and whether another run
        # of their shape might not pass (then their lines give no shape).
        self._judged: dict[str, bool] = {}
        # The token memo: the tokens with no flag (a line of only these is clean), the
        # few with a flag (suspects, card heads, key-word tails), and the known tokens
        # with a run that their shape does not decide (their lines give no shape).
        self._clean: set[str] = set()
        self._flags: dict[str, int] = {}
        self._mixed: set[str] = set()

    def redact(self, text: str) -> Redacted:
        """``Redactor.redact(text)``, skipping the full scan when the screen passes it."""
        if self.passes(text, text.split()):
            return Redacted(text)
        return self.full(text)  # a secret may be here: the full scan

    def full(self, text: str) -> Redacted:
        """``Redactor.redact(text)``: the full scan, for a line :meth:`passes` did not
        pass. A line it finds clean teaches the screen its shape where that proves
        every line of the shape clean (see the module docstring)."""
        result = self.redactor.redact(text)
        if not result.findings and text.isascii():
            raw = text.encode()
            shape = raw.translate(_ZERO_DIGITS)
            card_place = _CARD_PLACE.search(shape) is not None
            if not (card_place and p.CARD_HINT.search(text)) and not self._has_undecided_run(text):
                self._remember(raw, shape, card_place)
        return result

    def passes(self, text: str, tokens: list[str]) -> bool:
        """True when ``Redactor.redact(text)`` certainly finds nothing; False when the full
        scan must decide. ``tokens`` must be ``text.split()``: a caller that splits the
        line anyway (the normaliser, for its masker) splits it only once."""
        if not text.isascii():
            return self._clean.issuperset(tokens) or self._check(tokens)
        raw = text.encode()
        shape = raw.translate(_ZERO_DIGITS)
        if shape in self._shapes:  # the common case: one look-up
            return True
        card_shapes = self._card_shapes
        if card_shapes and raw.translate(_CARD_DIGITS) in card_shapes:
            return True
        return self._new_shape(text, tokens, raw, shape)

    def _new_shape(self, text: str, tokens: list[str], raw: bytes, shape: bytes) -> bool:
        """``passes`` for an ASCII line of a shape not known clean; remembers its shape
        when it passes and the shape proves every line of it clean."""
        lower = text.lower()
        # Where CARD_HINT could match some line of this shape (needs 4 digits in a row).
        card_place = _CARD_PLACE.search(shape) is not None
        if _has_literal(lower):  # a detector with a literal may match: the tokens decide
            if not (self._clean.issuperset(tokens) or self._check(tokens)):
                return False
            mixed = not self._mixed.isdisjoint(tokens)
        else:  # only the card and token-run detectors can match
            if card_place and p.CARD_HINT.search(text) is not None:
                return False
            mixed = False
            if self._runs is not None and lower != text:  # the detector judges a run with a capital
                judged = self._judged
                for token in tokens:  # a run lies within a token, RUN_MIN or longer
                    if len(token) < p.RUN_MIN or token.lower() == token:
                        continue
                    for run in p.RUN.findall(" " + token):
                        if run.lower() == run:
                            continue
                        undecided = judged.get(run)
                        if undecided is None:
                            if _has_run(self._runs, run, run.lower()):
                                return False
                            undecided = self._undecided(run)
                            if len(run) <= _LONGEST_MEMOISED:
                                if len(judged) >= self._shape_memo_size:
                                    judged.clear()
                                judged[run] = undecided
                        mixed = mixed or undecided
        if not mixed:
            self._remember(raw, shape, card_place)
        return True

    def _remember(self, raw: bytes, shape: bytes, card_place: bool) -> None:
        """Remember the shape of the clean line ``raw`` (bytes of ASCII text), which has no
        CARD_HINT match and no run whose digits may decide the token-run detector."""
        if len(shape) > _LONGEST_MEMOISED:
            return
        shapes, card_shapes = self._shapes, self._card_shapes
        if len(shapes) + len(card_shapes) >= self._shape_memo_size:
            shapes.clear()
            card_shapes.clear()
        if card_place:
            card_shapes.add(raw.translate(_CARD_DIGITS))
        else:
            shapes.add(shape)

    # --- the token screen -----------------------------------------------------------

    def _check(self, tokens: list[str]) -> bool:
        """``passes`` by tokens, for a line with a new or flagged token."""
        clean, flags = self._clean, self._flags
        if len(clean) + len(flags) >= self._memo_size:
            self._forget()  # only here: the memo does not change under one line's check
        odd = set(tokens).difference(clean)  # new tokens, and known ones with a flag
        new = odd.difference(flags)
        if new:
            if not self._learn(new):
                return False  # a suspect among the new tokens
            odd = odd.difference(clean)
            if not odd:
                return True
        marked: list[tuple[str, int]] = []
        for token in odd:
            flag = flags[token]
            if flag & _SUSPECT:
                return False
            marked.append((token, flag))
        # Clean but for card heads and key-word tails: only what follows them can matter.
        return _pairs_pass(tokens, marked)

    def _learn(self, tokens: set[str]) -> bool:
        """Classify and memoise new ``tokens``; False when one is suspect (the others may
        be left unlearnt).

        The batch is first checked as a whole, joined by spaces: with no literal, no card
        number and no run with a capital that the token-run detector takes, every token
        is clean or a card head. Each trigger lies within one token (a card number may
        span two, which only sends the batch the slow way), so that answer is exactly
        the token-by-token one."""
        joined = " ".join(tokens)
        if joined.isascii():  # else lowering may change lengths, and \\d and \\w differ
            raw = b" " + joined.encode()
            if _ANY_LITERAL.search(raw.lower()) is None:
                classes = raw.translate(_CLASS_TABLE)
                capital = classes.find(b"U") >= 0
                if not capital or self._runs is None or not _has_run(self._runs, joined, joined.lower()):
                    if capital:
                        self._mixed.update(t for t in tokens if self._has_undecided_run(t))
                    heads: list[str] = []
                    m = _CARD_OR_HEAD.search(classes)
                    while m is not None and m["card"] is None:
                        start = m.start()  # the digit's offset in joined
                        heads.append(joined[joined.rfind(" ", 0, start) + 1 : m.end() - 1])
                        m = _CARD_OR_HEAD.search(classes, m.end())
                    if m is None:
                        if heads:
                            self._flags.update(dict.fromkeys(heads, _CARD_HEAD))
                            tokens = tokens.difference(heads)
                        self._clean.update(tokens)
                        return True
        return self._learn_each(tokens)

    def _learn_each(self, tokens: Iterable[str]) -> bool:
        """``_learn`` token by token: the slow way, exact for any token."""
        clean, flagged = self._clean, self._flags
        for token in tokens:
            lower = token.lower()
            if _LITERALS.search(lower) or p.CARD_HINT.search(token):
                flags = _SUSPECT
            else:
                flags = _key_word_flags(token, lower) if _KV_LITERALS.search(lower) else 0
                if len(token) >= p.RUN_MIN and lower != token:  # a run needs a capital
                    if self._runs is not None and _has_run(self._runs, token, lower):
                        flags |= _SUSPECT
                    elif self._has_undecided_run(token):
                        self._mixed.add(token)
            if flags & _SUSPECT:
                flagged[token] = flags
                return False
            if token[-1].isdecimal() and _HEAD.search(token, max(0, len(token) - 9)):
                flags |= _CARD_HEAD
            if flags:
                flagged[token] = flags
            else:
                clean.add(token)
        return True

    def _undecided(self, run: str) -> bool:
        """True when the token-run detector may judge a run of the shape of ``run`` (a run
        with a capital, which it passes) otherwise: only by entropy, when the digits
        decide (see :func:`~stream_processors.normalize.redaction.entropy.digits_may_decide`).
        Vendor tokens and AWS ids it finds by character classes, the same in a shape."""
        return self._entropy_min is not None and len(run) >= self._entropy_min and digits_may_decide(run)

    def _has_undecided_run(self, token: str) -> bool:
        """True when a run with a capital in ``token`` is :meth:`_undecided`."""
        return self._runs is not None and any(
            run.lower() != run and self._undecided(run) for run in p.RUN.findall(" " + token)
        )

    def _forget(self) -> None:
        self._clean.clear()
        self._flags.clear()
        self._mixed.clear()
