"""Semantic masking: replace the variable parts of a log line with typed placeholders.

``mask(text)`` normalises the line (Unicode NFKC, whitespace runs collapsed to one
space, trimmed) and replaces every match of the ordered rule set with its
placeholder (``<IP>``, ``<TS>``, ``<NUM>`` ...). It is pure, deterministic and never
raises on input text. All rules run as one compiled alternation, so a line is scanned
once whatever the number of rules.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from stream_processors.normalize.templating.exceptions import InvalidMaskRule
from stream_processors.normalize.templating.rules import DEFAULT_RULES, MaskRule


class Param(NamedTuple):
    """One variable part of a line: its placeholder (``<IP>``, ``<*>`` ...) and original text.

    A NamedTuple rather than a frozen dataclass: millions are built per second and
    tuple construction is about twice as fast.
    """

    placeholder: str
    value: str


class MaskedLine(NamedTuple):
    """A masked line: its tokens, the masked-out parameters in order, and the raw input."""

    text: str
    tokens: tuple[str, ...]
    params: tuple[Param, ...]
    raw: str

    @property
    def source(self) -> str:
        """The normalised (NFKC, single-spaced) line before masking."""
        return normalize(self.raw)

    @property
    def entropy(self) -> float:
        """Shannon entropy of the normalised line in bits per character (0.0 when empty).

        High values flag random-looking content (tokens, hashes, base64 blobs).
        """
        return shannon_entropy(self.source)

    @property
    def variable_ratio(self) -> float:
        """Fraction of the normalised line's characters that were masked (0.0 to 1.0)."""
        source = self.source
        if not source:
            return 0.0
        return sum(len(p.value) for p in self.params) / len(source)


def shannon_entropy(text: str) -> float:
    """Shannon entropy of the character distribution of ``text``, in bits per character."""
    if not text:
        return 0.0
    size = len(text)
    return -sum(n / size * math.log2(n / size) for n in Counter(text).values())


def normalize(text: str) -> str:
    """NFKC-normalise ``text`` (skipped for ASCII) and collapse whitespace to single spaces."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return " ".join(text.split())


_Masked = tuple[str, tuple[Param, ...]]
_Spans = tuple[tuple[int, int, str], ...]
_MAYBE_VARIABLE = re.compile(r"[\d/:\\~]")

# The digit shape of a token for the built-in rules: each ASCII digit is replaced by a
# digit the rules cannot tell apart from it. The rules test digits only through ``\d``
# and classes holding all ten digits, except (1) the literal ``0`` of ``0x``, (2) the
# pod-hash class, which holds 2 and 4-9 but not 0, 1 or 3, and (3) the IPv4 octet
# ranges (``25[0-5]`` ...). A token without ``x``/``X`` and with at most one ``-``
# can meet neither (1) nor (2), so all its digits become 0 (_FLAT); otherwise 0 -> 0,
# {1, 3} -> 1 and the rest -> 2 (_EXACT) keeps both exact. (3) needs three dots; an
# octet always spans a whole digit run, and a run is a valid octet by its length alone
# unless it has three digits, so in a flat token with three dots the three-digit runs
# that are valid octets (100-255) are first marked with a non-ASCII letter (shaped
# tokens are ASCII, so the mark cannot collide). Other tokens with three dots are not
# shaped. So two ASCII tokens of one shape get their placeholders at the same places
# (tests/unit/test_templating_shapes.py checks this and the rules' digit classes).
_FLAT = str.maketrans("0123456789", "0000000000")
_EXACT = str.maketrans("0123456789", "0121222222")
_OCTET_RUN = re.compile(r"(?<![0-9])(?:1[0-9][0-9]|2[0-4][0-9]|25[0-5])(?![0-9])")

# Digit shapes remembered at most (fewer than tokens: many tokens share one shape).
_SHAPE_MEMO_SIZE = 50_000
# Recent whole lines: at most this many, of at most this many characters each.
_LINE_MEMO_SIZE = 8192
_LINE_MEMO_CHARS = 512


class Masker:
    """A compiled rule set with bounded memos. Not thread-safe (the memos).

    Masking is done token by token, memoised per distinct token, so a line costs a few
    dictionary look-ups once its words have been seen; a line seen recently (logs repeat
    themselves) costs one. Results never depend on the memos. Rules with a ``guard``
    also run over the whole line when the guard matches.
    Raises :class:`InvalidMaskRule` at construction when two rules share a name.
    """

    __slots__ = (
        "_digits",
        "_guard",
        "_lines",
        "_maybe",
        "_memo",
        "_memo_size",
        "_multi",
        "_names",
        "_regex",
        "_shapes",
        "_whole",
        "rules",
    )

    def __init__(self, rules: Sequence[MaskRule] = DEFAULT_RULES, memo_size: int = 200_000) -> None:
        names = [r.name for r in rules]
        if len(set(names)) != len(names):
            raise InvalidMaskRule(f"duplicate rule names in {names}")
        self.rules: tuple[MaskRule, ...] = tuple(rules)
        self._regex = _alternation(self.rules, "r")
        self._whole = re.compile(f"(?:{self._regex.pattern})", self._regex.flags)
        self._names = {f"r{i}": r.placeholder for i, r in enumerate(self.rules)}
        spanning = [r for r in self.rules if r.guard is not None]
        self._multi = _alternation(spanning, "s") if spanning else None
        self._guard = (
            re.compile("|".join(f"(?:{r.guard.pattern})" for r in spanning if r.guard))
            if spanning
            else None
        )
        self._names.update({f"s{i}": r.placeholder for i, r in enumerate(spanning)})
        self._memo: dict[str, _Masked] = {}
        self._memo_size = memo_size
        self._lines: dict[str, MaskedLine] = {}
        # Shortcut for all-digit tokens, only where the rule set is known to send them
        # whole to <NUM> (every rule built in); custom rule sets always scan.
        builtin = all(r in DEFAULT_RULES for r in self.rules)
        num = next((r for r in self.rules if r.name == "num"), None)
        self._digits = num.placeholder if builtin and num is not None else None
        self._maybe = _MAYBE_VARIABLE if builtin else None
        # Placeholder spans per digit shape (_FLAT/_EXACT above); built-in rules only.
        self._shapes: dict[str, _Spans] | None = {} if builtin else None

    def mask(self, text: str, tokens: Sequence[str] | None = None) -> MaskedLine:
        """Normalise and mask one line. Deterministic; never raises on input.

        ``tokens``, when given, must be ``text.split()`` -- a caller that has already
        split the line (the normaliser's redaction screen) saves the second split. It is
        ignored for a non-ASCII ``text``, which is split again after NFKC.
        """
        lines = self._lines
        seen = lines.get(text)
        if seen is not None:
            return seen
        key = text
        if not text.isascii():
            text = unicodedata.normalize("NFKC", text)
            tokens = None
        if self._guard is not None and self._guard.search(text):
            masked = self._mask_spanning(text)
        else:
            masked = self._mask_tokens(text, tokens)
        if len(key) <= _LINE_MEMO_CHARS:
            if len(lines) >= _LINE_MEMO_SIZE:
                lines.clear()
            lines[key] = masked
        return masked

    def _mask_tokens(self, text: str, tokens: Sequence[str] | None) -> MaskedLine:
        memo = self._memo
        out: list[str] = []
        params: list[Param] = []
        for token in text.split() if tokens is None else tokens:
            hit = memo.get(token)
            if hit is None:
                hit = self._mask_token(token)
            out.append(hit[0])
            if hit[1]:
                params.extend(hit[1])
        return MaskedLine(" ".join(out), tuple(out), tuple(params), text)

    def _mask_token(self, token: str) -> _Masked:
        if self._digits is not None and token.isdigit() and token.isascii():
            hit: _Masked = (self._digits, (Param(self._digits, token),))
        else:
            hit = self._scan(token)
        if len(self._memo) >= self._memo_size:
            self._memo.clear()
        self._memo[token] = hit
        return hit

    def _scan(self, token: str) -> _Masked:
        if self._maybe is not None and self._maybe.search(token) is None:
            return token, ()
        shapes = self._shapes
        if shapes is None or not token.isascii():
            return _apply(token, self._spans(token))
        flat = token.count("-") < 2 and "x" not in token and "X" not in token
        if token.count(".") >= 3:
            if not flat:
                return _apply(token, self._spans(token))
            shape = _OCTET_RUN.sub("\u2160\u2160\u2160", token).translate(_FLAT)
        else:
            shape = token.translate(_FLAT if flat else _EXACT)
        spans = shapes.get(shape)
        if spans is None:
            spans = self._spans(token)
            if len(shapes) >= min(self._memo_size, _SHAPE_MEMO_SIZE):
                shapes.clear()
            shapes[shape] = spans
        return _apply(token, spans)

    def _spans(self, token: str) -> _Spans:
        """Where the rules put placeholders in ``token``: ``(start, end, placeholder)``."""
        whole = self._whole.fullmatch(token)
        if whole is not None:
            return ((0, len(token), self._names[whole.lastgroup or ""]),)
        names = self._names
        return tuple(
            (match.start(), match.end(), names[match.lastgroup or ""])
            for match in self._regex.finditer(token)
        )

    def _mask_spanning(self, text: str) -> MaskedLine:
        assert self._multi is not None
        out: list[str] = []
        params: list[Param] = []
        last = 0
        for match in self._multi.finditer(text):
            if len(match.group().split()) < 2:
                continue
            self._mask_words(text[last : match.start()], out, params)
            placeholder = self._names[match.lastgroup or ""]
            out.append(placeholder)
            params.append(Param(placeholder, " ".join(match.group().split())))
            last = match.end()
        self._mask_words(text[last:], out, params)
        return MaskedLine(" ".join(out), tuple(out), tuple(params), text)

    def _mask_words(self, text: str, out: list[str], params: list[Param]) -> None:
        for token in text.split():
            hit = self._memo.get(token) or self._mask_token(token)
            out.append(hit[0])
            params.extend(hit[1])


def _apply(token: str, spans: _Spans) -> _Masked:
    if not spans:
        return token, ()
    if len(spans) == 1 and spans[0][0] == 0 and spans[0][1] == len(token):
        placeholder = spans[0][2]
        return placeholder, (Param(placeholder, token),)
    parts: list[str] = []
    params: list[Param] = []
    last = 0
    for start, end, placeholder in spans:
        parts.append(token[last:start])
        parts.append(placeholder)
        params.append(Param(placeholder, token[start:end]))
        last = end
    parts.append(token[last:])
    return "".join(parts), tuple(params)


def _alternation(rules: Sequence[MaskRule], prefix: str) -> re.Pattern[str]:
    flags = 0
    for r in rules:
        flags |= r.pattern.flags & (re.IGNORECASE | re.MULTILINE | re.DOTALL)
    alternatives = [f"(?P<{prefix}{i}>{r.pattern.pattern})" for i, r in enumerate(rules)]
    return re.compile("|".join(alternatives) or "(?!)", flags)


def with_rules(
    extra: Iterable[MaskRule], base: Sequence[MaskRule] = DEFAULT_RULES, first: bool = True
) -> Masker:
    """A :class:`Masker` with user rules added to ``base``.

    By default user rules take priority (they are tried before the built-in ones);
    pass ``first=False`` to try them last. A user rule with the name of a built-in
    rule replaces it in place. Raises :class:`InvalidMaskRule` on duplicate names.
    """
    extra = list(extra)
    replaced = {r.name: r for r in extra}
    merged = [replaced.pop(r.name, r) for r in base]
    added = [r for r in extra if r.name in replaced]
    return Masker(added + merged if first else merged + added)


_DEFAULT: list[Masker] = []


def default_masker() -> Masker:
    """A process-wide :class:`Masker` over :data:`DEFAULT_RULES` (built on first use)."""
    if not _DEFAULT:
        _DEFAULT.append(Masker())
    return _DEFAULT[0]


def mask(text: str) -> MaskedLine:
    """Mask ``text`` with the default rules; see :meth:`Masker.mask`."""
    return default_masker().mask(text)
