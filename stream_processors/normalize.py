"""The normalize step: variable parts of a message become typed placeholders.

``normalize(event)`` is pure: it returns a copy of the event with ``template``
(the masked message) and ``template_id`` (a stable hash of the service and
template) filled.  The Faust agent in :mod:`stream_processors.app` only
decodes, calls it, and sends the result on.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from schemas.models import Event


@dataclass(frozen=True)
class MaskRule:
    name: str
    pattern: re.Pattern[str]
    placeholder: str


def _rule(name: str, regex: str, placeholder: str) -> MaskRule:
    return MaskRule(name, re.compile(regex), placeholder)


# Order matters: the most specific shapes first, bare numbers last.
DEFAULT_RULES: tuple[MaskRule, ...] = (
    _rule("url", r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+", "<URL>"),
    _rule("uuid", r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b",
          "<UUID>"),
    _rule("timestamp",
          r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?\b", "<TS>"),
    _rule("ip", r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b", "<IP>"),
    _rule("path", r"(?<![\w.])(?:/[\w.@-]+){2,}/?", "<PATH>"),
    _rule("hex", r"\b0x[0-9a-fA-F]+\b|\b[0-9a-fA-F]{12,}\b", "<HEX>"),
    _rule("duration", r"\b\d+(?:\.\d+)?(?:ms|us|µs|ns|s|m|h)\b", "<DURATION>"),
    _rule("size", r"\b\d+(?:\.\d+)?\s?(?:[KMGT]i?B|bytes|B)\b", "<SIZE>"),
    _rule("number", r"(?<![\w<])[-+]?\d+(?:\.\d+)?\b", "<NUM>"),
)

_SPACES = re.compile(r"\s+")


def mask(text: str, rules: tuple[MaskRule, ...] = DEFAULT_RULES) -> str:
    """Replace variable parts of ``text`` by placeholders; whitespace is collapsed."""
    out = _SPACES.sub(" ", text).strip()
    for rule in rules:
        out = rule.pattern.sub(rule.placeholder, out)
    return out


def template_id(service: str, template: str) -> str:
    """Stable id of a template within a service (never Python's randomized ``hash``)."""
    digest = hashlib.sha1(f"{service}\x00{template}".encode(), usedforsecurity=False)
    return f"tpl-{digest.hexdigest()[:16]}"


def normalize(event: Event, rules: tuple[MaskRule, ...] = DEFAULT_RULES) -> Event:
    """Return ``event`` with ``template`` and ``template_id`` filled.  Pure; never raises."""
    template = mask(event.message, rules)
    return event.model_copy(
        update={"template": template, "template_id": template_id(event.service, template)}
    )
