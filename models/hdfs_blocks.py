"""HDFS block sessions from raw log lines: block ids + mined template ids -> event counts.

HDFS logs interleave many blocks; a *session* is every line that names one block
(``blk_-?\\d+``), in input order, as in Loghub/loglizer. :func:`block_sessions` reads
lines once, hands each line's content to a caller-supplied ``template`` function (in
``bench/hdfs.py`` Seismo's online :class:`~stream_processors.normalize.templating.TemplateMiner`)
and files the returned template id under every distinct block id the *raw* content
names (the miner masks ids to ``<ID>``, so they are taken before masking). Lines that
name no block are still mined -- the miner sees the whole stream, as in production --
but join no session.

Why here and not in ``bench/``: this is the feature step in front of
:class:`models.session.SessionInvariants` (a session is the same ``Features`` count
dict), it is importable and type-checked as part of the ``models`` package, and unit
tests can import it (``bench/`` is a folder of scripts, not a package). It stays pure
(no I/O, no labels) and does not import ``stream_processors`` -- that package imports
``models`` -- because the miner comes in as a plain callable.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from models.base import Features

BLOCK_ID = re.compile(r"blk_-?\d+")


def block_ids(text: str) -> tuple[str, ...]:
    """The distinct block ids ``text`` names, in order of first mention."""
    return tuple(dict.fromkeys(BLOCK_ID.findall(text)))


@dataclass(frozen=True, slots=True)
class BlockSession:
    """One block's events (template ids in line order); ``first_line`` is 1-based."""

    block_id: str
    first_line: int
    events: tuple[str, ...]

    def counts(self) -> Features:
        """Event-count vector ``{template_id: count}``, the input of the session detector."""
        out: Features = {}
        for event in self.events:
            out[event] = out.get(event, 0.0) + 1.0
        return out


@dataclass(frozen=True, slots=True)
class Grouped:
    """Result of :func:`block_sessions`: sessions by first appearance and line tallies."""

    sessions: tuple[BlockSession, ...]
    lines: int
    unparsed: int
    without_block: int


def block_sessions(
    lines: Iterable[str],
    content: Callable[[str], str | None],
    template: Callable[[str], str],
) -> Grouped:
    """Group ``lines`` into block sessions ordered by each block's first line.

    Blank lines are skipped. ``content(line)`` returns the message part of a line
    (``None``: the line does not fit the log format; it is counted in ``unparsed`` and
    skipped; an empty message is skipped too).
    ``template(content)`` is called once per parsed line, in input order, and returns
    its template id. Never raises on input text (unless a callable does).
    """
    first: dict[str, int] = {}
    events: dict[str, list[str]] = {}
    total = unparsed = without_block = 0
    for number, line in enumerate(lines, start=1):
        total += 1
        if not line.strip():
            continue
        text = content(line.rstrip("\r\n"))
        if text is None:
            unparsed += 1
            continue
        if not text.strip():
            continue
        tid = template(text)
        blocks = block_ids(text)
        if not blocks:
            without_block += 1
        for block in blocks:
            if block not in events:
                first[block] = number
                events[block] = []
            events[block].append(tid)
    sessions = tuple(BlockSession(b, first[b], tuple(ev)) for b, ev in events.items())
    return Grouped(sessions, total, unparsed, without_block)


def chronological_split(
    sessions: Iterable[BlockSession], train_fraction: float = 0.8
) -> tuple[list[BlockSession], list[BlockSession]]:
    """Split by first appearance: the earliest ``train_fraction`` of blocks train, the rest test.

    Raises ``ValueError`` unless ``0 < train_fraction < 1``.
    """
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must lie in (0, 1), got {train_fraction}")
    ordered = sorted(sessions, key=lambda s: s.first_line)
    cut = int(len(ordered) * train_fraction)
    return ordered[:cut], ordered[cut:]
