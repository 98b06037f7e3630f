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


def skeleton(tokens: Sequence[str]) -> Skeleton:
    """The tokens with each run of value tokens (and unit words after them) as one ``<*>``.

    Placeholders inside other tokens read as ``<*>`` (``uid=<NUM>`` -> ``uid=<*>``).
    Pure; linear in the number of tokens.
    """
    out: list[str] = []
    in_value = False
    value = _VALUE.fullmatch
    for token in tokens:
        if token.isalpha():
            if in_value and UNIT_WORD.fullmatch(token) is not None:
                continue
            in_value = False
            out.append(token)
        elif value(token) is not None or (in_value and is_unit(token)):
            if not in_value:
                out.append(WILDCARD)
            in_value = True
        else:
            in_value = False
            out.append(_PLACEHOLDERS.sub(WILDCARD, token) if "<" in token else token)
    return tuple(out)


def anchored(skel: Skeleton) -> bool:
    """True when ``skel`` has a literal token: only such skeletons may join templates."""
    return any(t != WILDCARD for t in skel)


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

    Same length: position by position, differing tokens become (partial) wildcards.
    Equal skeletons: segment by segment, a value run that differs becomes one ``<*>``.
    Otherwise the longest common subsequence is kept and each gap becomes one ``<*>``.
    """
    if len(a) == len(b):
        return [x if x == y else generalize(x, None, y)[0] for x, y in zip(a, b, strict=True)]
    sa, sb = _segments(a), _segments(b)
    if len(sa) == len(sb) and all(
        len(x) == len(y) == 1 or (is_value(x[0]) and is_value(y[0])) for x, y in zip(sa, sb, strict=True)
    ):
        out: list[str] = []
        for x, y in zip(sa, sb, strict=True):
            if x == y:
                out.extend(x)
            elif len(x) == len(y) == 1:
                out.append(generalize(x[0], None, y[0])[0])
            else:
                out.append(WILDCARD)
        return out
    return _lcs_text(a, b)


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
