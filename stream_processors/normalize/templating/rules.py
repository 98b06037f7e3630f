"""The default masking rules: ordered, typed, one frozen :class:`MaskRule` per variable kind.

Order matters twice: rules are tried left to right at every position of a line, so a
rule listed earlier wins over a later one that would match at the same place (a
timestamp beats the numbers inside it, a UUID beats the hex inside it). Every pattern
is bounded so that it never starts or ends inside a word: ``ssh2``, ``tty2`` or
``x86`` stay literal while ``uid=0``, ``core.2275`` and ``PS/2`` are masked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stream_processors.normalize.templating.exceptions import InvalidMaskRule

_PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]*>")


@dataclass(frozen=True, slots=True)
class MaskRule:
    """One masking rule: text matching ``pattern`` is replaced by ``placeholder``.

    ``placeholder`` must look like ``<NAME>`` (upper case). The pattern must not use
    named groups; unnamed groups are fine. Rules are applied token by token (tokens
    are separated by whitespace), which is what makes masking fast. A rule whose
    matches may contain whitespace must set ``guard``: a cheap regex that finds
    something in every line where ``pattern`` could match across tokens; such lines
    are first scanned whole with ``pattern``.
    """

    name: str
    pattern: re.Pattern[str]
    placeholder: str
    guard: re.Pattern[str] | None = None

    def __post_init__(self) -> None:
        if not _PLACEHOLDER.fullmatch(self.placeholder):
            raise InvalidMaskRule(f"placeholder {self.placeholder!r} is not like <NAME>")
        if self.pattern.groupindex:
            raise InvalidMaskRule(f"rule {self.name!r} must not use named groups")
        if self.pattern.match(""):
            raise InvalidMaskRule(f"rule {self.name!r} matches the empty string")


def rule(
    name: str, pattern: str, placeholder: str | None = None, guard: str | None = None
) -> MaskRule:
    """Build a :class:`MaskRule` from regex strings; raises :class:`InvalidMaskRule`.

    The placeholder defaults to the upper-cased name in angle brackets.
    """
    try:
        compiled = re.compile(pattern)
        guard_rx = None if guard is None else re.compile(guard)
    except re.error as exc:
        raise InvalidMaskRule(f"rule {name!r}: bad regex: {exc}") from exc
    return MaskRule(name, compiled, placeholder or f"<{name.upper()}>", guard_rx)


_L = r"(?<![A-Za-z0-9_])"  # left boundary: not inside a word
_R = r"(?![A-Za-z0-9_])"  # right boundary
_HX = "[0-9a-fA-F]"
_MON = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*"
_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*"
_CLOCK = r"\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?"
_ZONE = r"(?:Z|[+-]\d{2}:?\d{2}|\s?(?:UTC|GMT))?"
_IP4 = r"(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}"
_IP6 = (
    rf"(?:(?:{_HX}{{1,4}}:){{7}}{_HX}{{1,4}}"
    rf"|(?=[0-9a-fA-F:]*\d)(?:{_HX}{{1,4}}:){{0,6}}{_HX}{{0,4}}::(?:{_HX}{{1,4}}:){{0,6}}{_HX}{{0,4}})"
)
_K8S = "[bcdfghjklmnpqrstvwxz2456789]"
# A clock time right after a digit and a space or "T" (``Dec 04 04:47:44``); it starts
# with a literal ":" so lines without one are rejected at memchr speed.
_TS_GUARD = (
    r":\d\d(?:(?<=\d[\sT]\d:\d\d)|(?<=\d[\sT]\d\d:\d\d)"
    r"|(?<=\d,[\sT]\d:\d\d)|(?<=\d,[\sT]\d\d:\d\d))"
)

DEFAULT_RULES: tuple[MaskRule, ...] = (
    rule("url", _L + r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s\"'<>]+"),
    rule("uuid", _L + rf"(?=[0-9a-fA-F-]*\d){_HX}{{8}}-{_HX}{{4}}-{_HX}{{4}}-{_HX}{{4}}-{_HX}{{12}}" + _R),
    rule(
        "ts",
        _L
        + r"(?:\d{4}-\d{2}-\d{2}[T ]"
        + _CLOCK
        + _ZONE
        + r"|\d{4}-\d{2}-\d{2}-\d{2}\.\d{2}\.\d{2}(?:\.\d+)?"
        + rf"|(?:{_DAY},?\s)?{_MON}\s{{1,2}}\d{{1,2}},?\s{_CLOCK}(?:\s[A-Z]{{3,4}}(?=\s\d))?(?:\s\d{{4}})?"
        + rf"|(?:{_DAY},?\s)?\d{{1,2}}\s{_MON}\s\d{{4}}\s{_CLOCK}{_ZONE}"
        + r"|\d{1,4}[-/]\d{1,2}[-/]\d{1,4}[T ]"
        + _CLOCK
        + rf"|\d{{4}}-\d{{2}}-\d{{2}}|{_CLOCK})"
        + _R,
        guard=_TS_GUARD,
    ),
    rule("mac", _L + rf"(?=[0-9a-fA-F:-]*\d){_HX}{{2}}(?:[:-]{_HX}{{2}}){{5}}" + _R),
    rule("ip", _L + rf"(?:{_IP4}|\[{_IP6}\]|{_IP6})(?::\d{{1,5}})?" + _R),
    rule("pod", _L + rf"[a-z][a-z0-9-]*-(?=[a-z0-9-]*\d){_K8S}{{6,10}}-{_K8S}{{5}}" + _R),
    rule(
        "path",
        r"(?<![\w/.:~-])(?=~|[A-Za-z]:\\|/[^\s]*?[A-Za-z])"
        r"(?:[A-Za-z]:\\[^\s\"']+|~?(?:/[\w.@%+~-]+)+/?)",
    ),
    rule("hex", _L + rf"(?:0[xX]{_HX}+|(?=[0-9a-fA-F]*[a-fA-F])(?=[0-9a-fA-F]*\d){_HX}{{8,}})" + _R),
    rule(
        "duration",
        _L + r"\d+(?:\.\d+)?(?:ns|us|µs|ms|s|sec|secs|m|min|mins|h|hr|hrs|d)"
        r"(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))*" + _R,
    ),
    rule("size", _L + r"\d+(?:\.\d+)?(?:[KkMmGgTtPpEe]i?[Bb]|[Bb]ytes|B)" + _R),
    rule("id", _L + r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*_-?\d[\w-]*" + _R),
    rule("num", _L + r"[-+]?\d+(?:\.\d+)*" + _R),
)
"""Seismo's default rule set, in priority order.

Every built-in rule needs a digit or one of ``/ : \\ ~`` in its match; the masker
relies on that to skip plain words without scanning them.
"""


def placeholder_of(token: str) -> bool:
    """True when ``token`` is a placeholder such as ``<NUM>`` or the wildcard ``<*>``."""
    return token == "<*>" or _PLACEHOLDER.fullmatch(token) is not None


UNIT_WORD = re.compile(
    r"(?:[KkMmGgTtPpEe]i?[Bb]|[Bb]ytes?|B|octets?"
    r"|ns|us|µs|ms|s|secs?|seconds?|mins?|minutes?|h|hrs?|hours?|d|days?)(?:\(s\))?"
)
"""A unit of size or time written as its own word after a number (``403 bytes``,
``1.16 KB``, ``<1 sec``, ``5 second(s)``): the same units the ``size`` and ``duration``
rules mask when they are glued to the number. The miner reads such a word as part of
the value before it when it compares templates across token counts."""
