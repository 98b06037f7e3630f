"""Response budgets: an answer holds at most ``max_items`` items and about ``max_tokens`` tokens
(characters / 4 of its JSON).  What does not fit is summarized, never silently cut: counts per
service and per template (or kind) over every match come first, then the top items.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import TypeVar

from pydantic import BaseModel, Field

CHARS_PER_TOKEN = 4
TOP_KEYS = 15
UNTRUSTED_OPEN = "<untrusted-log-text>"
UNTRUSTED_CLOSE = "</untrusted-log-text>"

M = TypeVar("M", bound=BaseModel)


def untrusted(text: str) -> str:
    """Log text as delimited data: control characters dropped, the delimiters escaped inside."""
    clean = "".join(ch for ch in text if ch == "\n" or ch == "\t" or ch >= " ")
    clean = clean.replace("<untrusted-log-text", "&lt;untrusted-log-text").replace(
        "</untrusted-log-text", "&lt;/untrusted-log-text"
    )
    return f"{UNTRUSTED_OPEN}{clean}{UNTRUSTED_CLOSE}"


def tokens(answer: BaseModel) -> int:
    """Approximate tokens of an answer: characters of its JSON / 4, rounded up."""
    return -(-len(answer.model_dump_json()) // CHARS_PER_TOKEN)


class Summary(BaseModel):
    """Counts over every match, so a short answer still tells the whole picture."""

    total: int = Field(description="Items matching the request, over all pages.")
    returned: int = Field(description="Items in this answer.")
    omitted: int = Field(
        description="Matching items not in this answer (see next_cursor or narrow the filters)."
    )
    by_service: dict[str, int] = Field(
        description=f"Matches per service (top {TOP_KEYS}; the rest as 'other')."
    )
    by_group: dict[str, int] = Field(
        description=f"Matches per template or kind (top {TOP_KEYS}; the rest as 'other')."
    )


def counts(values: Iterable[str]) -> dict[str, int]:
    c = Counter(values)
    top = dict(c.most_common(TOP_KEYS))
    rest = sum(c.values()) - sum(top.values())
    if rest:
        top["other"] = rest
    return top


def summarize(total: int, returned: int, services: Iterable[str], groups: Iterable[str]) -> Summary:
    return Summary(
        total=total,
        returned=returned,
        omitted=total - returned,
        by_service=counts(services),
        by_group=counts(groups),
    )


def fit(build: Callable[[int], M], n: int, max_tokens: int) -> M:
    """``build(k)`` for the largest ``k <= n`` whose answer fits ``max_tokens`` (bisection).

    ``build(0)`` is returned even when it does not fit: the summary is the floor.
    """
    answer = build(n)
    if n == 0 or tokens(answer) <= max_tokens:
        return answer
    lo, hi = 0, n - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if tokens(build(mid)) <= max_tokens:
            lo = mid
        else:
            hi = mid - 1
    return build(lo)
