"""Templates across token counts: skeletons and the text of a group of templates.

The miner keys templates on token count, so an event whose variable part spans a
varying number of tokens (``403 bytes`` / ``1190 bytes (1.16 KB)``, ``00:01`` /
``<1 sec``, a list of block ids) first lands in one template per count. Its templates
have one *skeleton*: the tokens with every run of value tokens (a token that is
placeholders, digits and punctuation, or a unit word right after one) collapsed into
one ``<*>``. Templates with alike skeletons (:func:`alike`) are one event;
:func:`group_text` writes the text they share.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from stream_processors.normalize.templating.rules import UNIT_WORD
from stream_processors.normalize.templating.tokens import WILDCARD, Clash, clash, generalize

_PLACEHOLDERS = re.compile(r"<\*>|<[A-Z][A-Z0-9_]*>")
_PUNCT = ".,;:!?'\"()[]{}"
# A value token: placeholders, digits and punctuation only, with a placeholder or a digit.
_V = r"(?=\S*?(?:\d|<\*>|<[A-Z]))(?:<\*>|<[A-Z][A-Z0-9_]*>|[\d_]|[^\w\s])+(?!\S)"
_VALUE = re.compile(_V)

Skeleton = tuple[str, ...]


def is_value(token: str) -> bool:
    """True when ``token`` is only placeholders, digits and punctuation (and holds a value)."""
    return _VALUE.fullmatch(token) is not None


def is_unit(token: str) -> bool:
    """True when ``token`` is a unit word, ignoring surrounding punctuation (``KB)``, ``sec,``)."""
    core = token.strip(_PUNCT)
    return bool(core) and UNIT_WORD.fullmatch(core) is not None


# How skeleton() reads a token: a value, a unit word (a value only right after one),
# or a literal (as it stands, placeholders read as <*>). Memoised: templates share tokens.
_VALUE_KIND, _UNIT_KIND = " value", " unit"  # never tokens: tokens hold no space
_KINDS: dict[str, str] = {}
_KINDS_SIZE = 100_000


def _kind(token: str) -> str:
    if _VALUE.fullmatch(token) is not None:
        kind = _VALUE_KIND
    elif is_unit(token):
        kind = _UNIT_KIND
    else:
        kind = _PLACEHOLDERS.sub(WILDCARD, token) if "<" in token else token
    if len(_KINDS) >= _KINDS_SIZE:
        _KINDS.clear()
    _KINDS[token] = kind
    return kind


def skeleton(tokens: Sequence[str]) -> Skeleton:
    """The tokens with each run of value tokens (and unit words after them) as one ``<*>``.

    Placeholders inside other tokens read as ``<*>`` (``uid=<NUM>`` -> ``uid=<*>``).
    Pure (the memo never changes a result); linear in the number of tokens.
    """
    out: list[str] = []
    in_value = False
    kinds = _KINDS
    for token in tokens:
        kind = kinds.get(token)
        if kind is None:
            kind = _kind(token)
        if kind is _VALUE_KIND or (in_value and kind is _UNIT_KIND):
            if not in_value:
                out.append(WILDCARD)
                in_value = True
        else:
            out.append(token if kind is _UNIT_KIND else kind)
            in_value = False
    return tuple(out)


def anchored(skel: Skeleton) -> bool:
    """True when ``skel`` has a literal token: only such skeletons may join templates."""
    return skel.count(WILDCARD) != len(skel)


def alike(a: Skeleton, b: Skeleton, threshold: float) -> bool:
    """True when skeletons ``a`` and ``b`` are one event.

    They must have as many tokens, every differing pair must be mergeable into one
    wildcard (:func:`~stream_processors.normalize.templating.tokens.clash` says NONE:
    ``cdn.example.net:<*>`` / ``<*>.example.org:<*>``, not ``bytes`` / ``values``), and
    at least ``threshold`` of the positions must be equal.
    """
    if len(a) != len(b):
        return False
    same = 0
    for x, y in zip(a, b, strict=True):
        if x == y:
            same += 1
        elif clash(x, y) is not Clash.NONE:
            return False
    return same >= threshold * len(a)


def _segments(tokens: Sequence[str]) -> list[list[str]]:
    """``tokens`` cut as :func:`skeleton` reads them: one list per skeleton token."""
    out: list[list[str]] = []
    in_value = False
    for token in tokens:
        if is_value(token) or (in_value and is_unit(token)):
            if in_value:
                out[-1].append(token)
            else:
                out.append([token])
            in_value = True
        else:
            out.append([token])
            in_value = False
    return out


def group_text(a: Sequence[str], b: Sequence[str]) -> list[str]:
    """The tokens of one template covering templates ``a`` and ``b``. Pure.

    When their skeleton segments line up, segment by segment: equal ones are kept,
    differing literals and values become (partial) wildcards position by position, and
    a value run whose length or unit differs becomes one ``<*>`` keeping the punctuation
    both runs share (``(<NUM> KB)`` / ``(<NUM> MB)`` -> ``(<*>)``). Otherwise, same
    length: position by position; else the longest common subsequence is kept and each
    gap becomes one ``<*>``.
    """
    sa, sb = _segments(a), _segments(b)
    if len(sa) == len(sb) and all(
        len(x) == len(y) == 1 or (is_value(x[0]) and is_value(y[0])) for x, y in zip(sa, sb, strict=True)
    ):
        out: list[str] = []
        for x, y in zip(sa, sb, strict=True):
            out.extend(_merge_segment(x, y))
        return out
    if len(a) == len(b):
        return [x if x == y else generalize(x, None, y)[0] for x, y in zip(a, b, strict=True)]
    return _lcs_text(a, b)


def _merge_segment(x: list[str], y: list[str]) -> list[str]:
    if x == y:
        return x
    if len(x) == len(y) and x[1:] == y[1:]:
        return [generalize(x[0], None, y[0])[0], *x[1:]]
    lead = _common_end(x[0], y[0], reverse=False)
    trail = _common_end(x[-1], y[-1], reverse=True)
    return [lead + WILDCARD + trail]


def _common_end(a: str, b: str, reverse: bool) -> str:
    """The punctuation both ``a`` and ``b`` start (or end, ``reverse``) with."""
    if reverse:
        a, b = a[::-1], b[::-1]
    out = []
    for x, y in zip(a, b, strict=False):
        if x != y or x not in _PUNCT:
            break
        out.append(x)
    text = "".join(out)
    return text[::-1] if reverse else text


def _lcs_text(a: Sequence[str], b: Sequence[str]) -> list[str]:
    n, m = len(a), len(b)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            table[i][j] = table[i + 1][j + 1] + 1 if a[i] == b[j] else max(table[i + 1][j], table[i][j + 1])
    out: list[str] = []
    i = j = 0
    gap = False
    while i < n or j < m:
        if i < n and j < m and a[i] == b[j]:
            out.append(a[i])
            i, j, gap = i + 1, j + 1, False
            continue
        if not gap:
            out.append(WILDCARD)
            gap = True
        if j >= m or (i < n and table[i + 1][j] >= table[i][j + 1]):
            i += 1
        else:
            j += 1
    return out
