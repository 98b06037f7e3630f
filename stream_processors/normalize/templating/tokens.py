"""Template tokens: literal tokens and (partial) wildcards such as ``<*>`` or ``rhost=<*>``.

A template is a list of whitespace-separated tokens. A wildcard token keeps the
literal prefix and suffix that every line it absorbed shared, cut at a delimiter
(``rhost=<*>``, ``core.<*>``, ``[<*>]``), so templates stay readable and specific.
"""

from __future__ import annotations

from enum import IntEnum

WILDCARD = "<*>"

Wild = tuple[str, str]
"""A wildcard position: the literal ``(prefix, suffix)`` around ``<*>``."""

_DELIMS = frozenset("=:/,;()[]{}@#-_.|'\"")


def _balanced(text: str) -> bool:
    return text.count("<") == text.count(">")


def _common(a: str, b: str) -> int:
    """Length of the common prefix of ``a`` and ``b``."""
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def _prefix(a: str, b: str) -> str:
    prefix = a[: _common(a, b)]
    while prefix and (prefix[-1] not in _DELIMS or not _balanced(prefix)):
        prefix = prefix[:-1]
    return prefix


def _suffix(a: str, b: str) -> str:
    size = _common(a[::-1], b[::-1])
    suffix = a[len(a) - size :]
    while suffix and (suffix[0] not in _DELIMS or not _balanced(suffix)):
        suffix = suffix[1:]
    return suffix


def generalize(template: str, wild: Wild | None, token: str) -> tuple[str, Wild]:
    """The narrowest wildcard token covering ``template`` (or its wildcard) and ``token``.

    Pure. The prefix and suffix never overlap and never split a ``<PLACEHOLDER>``.
    """
    if wild is None:
        prefix, suffix = _prefix(template, token), _suffix(template, token)
        shortest = min(len(template), len(token))
    else:
        prefix, suffix = _prefix(wild[0], token), _suffix(wild[1], token)
        shortest = len(token)
    while len(prefix) + len(suffix) > shortest and suffix:
        suffix = suffix[1:]
    while len(prefix) + len(suffix) > shortest and prefix:
        prefix = prefix[:-1]
    return prefix + WILDCARD + suffix, (prefix, suffix)


def covers(wild: Wild, token: str) -> bool:
    """True when ``token`` fits the wildcard ``prefix<*>suffix``."""
    prefix, suffix = wild
    return (
        len(token) >= len(prefix) + len(suffix)
        and token.startswith(prefix)
        and token.endswith(suffix)
    )


def extract(wild: Wild, token: str) -> str:
    """The part of ``token`` that stands for ``<*>`` in ``prefix<*>suffix``."""
    prefix, suffix = wild
    return token[len(prefix) : len(token) - len(suffix)]


def route(token: str) -> str:
    """The tree key of a token: itself, or ``<*>`` when it holds a digit or a placeholder.

    A token holding a placeholder holds a value (``host.example.org:<NUM>``), so its
    literal part may be one too: keying on it would give every host its own templates.
    """
    if "<" in token or any(c.isdigit() for c in token):
        return WILDCARD
    return token


def _case(token: str) -> str:
    core = token.strip(".,;:!?'\"()[]{}")
    if not core.isalpha():
        return ""
    if core.isupper() and len(core) > 1:
        return "CAPS"
    if core[0].isupper():
        return "Cap"
    return "low" if core.islower() else "mixed"


class Clash(IntEnum):
    """How two differing literal tokens at one template position relate."""

    NONE = 0
    """Values of one field: merge them into a wildcard now."""
    SOFT = 1
    """Two plain words: one field's values or two events' words, told apart by how
    often new words turn up at that position (see ``MinerConfig.value_after``)."""
    HARD = 2
    """Never merge: they name different events."""


def clash(a: str, b: str) -> Clash:
    """How tokens ``a`` and ``b`` (different, neither a wildcard) may be merged.

    Two different all-caps words are enumeration values (states, levels, event
    types) and name different events; so do plain words of different case
    (``Bye`` / ``disconnected``) and a plain word against a token holding a
    placeholder (``NODEVssh`` / ``:<NUM>``: a constant against a value). Tokens that
    differ only by a word between a shared delimited prefix or suffix conflict
    (``LOGIN(uid=<NUM>)`` / ``(uid=<NUM>)``: an optional constant names another event).
    Two plain words of the same case are a soft clash. Two differing parts are not
    judged like whole words: ``CONTAINER_REMOTE_LAUNCH`` / ``CONTAINER_REMOTE_CLEANUP``
    are values of one field, and ``chdir(pwd)`` / ``chdir(<PATH>)`` one call.
    """
    ca, cb = _case(a), _case(b)
    if ca and cb:
        return Clash.HARD if ca != cb or ca == "CAPS" else Clash.SOFT
    if ca or cb:
        return Clash.HARD if ("<" in a) != ("<" in b) else Clash.NONE
    prefix, suffix = _prefix(a, b), _suffix(a, b)
    if not prefix and not suffix:
        return Clash.NONE
    cut = len(prefix) + len(suffix)
    if cut > min(len(a), len(b)):
        return Clash.NONE
    ma, mb = a[len(prefix) : len(a) - len(suffix)], b[len(prefix) : len(b) - len(suffix)]
    return Clash.HARD if (not ma or not mb) and (ma or mb).isalpha() else Clash.NONE

