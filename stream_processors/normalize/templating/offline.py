"""Offline templating of a whole file: the engine behind ``seismo templates FILE``.

Lines are split with a log format (``raw`` or ``loghub:SYSTEM``), their content is
mined in input order by one :class:`TemplateMiner`, and each line is reported with
the final template of its group, as the Loghub structured CSVs are.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from stream_processors.normalize.templating.exceptions import UnknownLogFormat
from stream_processors.normalize.templating.loghub import LogFormat, loghub_format, loghub_systems
from stream_processors.normalize.templating.miner import MinerConfig, TemplateMiner


class TemplateRow(NamedTuple):
    """One output row: ``LineId,EventId,EventTemplate``."""

    line_id: int
    event_id: str
    event_template: str


CSV_HEADER = ("LineId", "EventId", "EventTemplate")

OFFLINE_CONFIG = MinerConfig(similarity=0.6, value_after=3, join_similarity=0.8, merge_live=True)
"""The miner settings of ``seismo templates``: the ones ``bench/templates_loso.py``
selects on all eight shared Loghub systems (the same rule that, chosen on seven, is
measured on the eighth). Offline, a template merged into an older one costs nothing --
every line is reported with its final template -- so plain words need three distinct
values at a position before they are read as values (``stored as bytes`` / ``stored as
values`` stay two events), and two templates may become one. The streaming default
(:class:`MinerConfig`) merges words at the second and never merges two existing
templates, so that an id once published keeps naming the same lines."""


def resolve_format(fmt: str) -> LogFormat | None:
    """``None`` for ``raw`` (whole line is content), else the Loghub format named.

    Raises :class:`UnknownLogFormat` for anything other than ``raw`` or
    ``loghub:SYSTEM`` with a known system (case-insensitive).
    """
    if fmt == "raw":
        return None
    prefix, _, system = fmt.partition(":")
    if prefix != "loghub" or not system:
        raise UnknownLogFormat(
            f"unknown format {fmt!r}; use raw or loghub:SYSTEM with SYSTEM one of "
            f"{', '.join(loghub_systems())}"
        )
    return loghub_format(system)


def templates_offline(
    lines: Iterable[str], fmt: str = "raw", config: MinerConfig | None = None
) -> list[TemplateRow]:
    """Mine templates over ``lines`` and return one row per parsed line, in input order.

    ``LineId`` is the 1-based position of the line in the input. Blank lines and lines
    that do not fit ``fmt`` are skipped (no row). Trailing newlines are ignored.
    ``config`` defaults to :data:`OFFLINE_CONFIG`. ``EventId`` is the stable id of the
    line's final template (a template merged into an older one reports the older id);
    ``EventTemplate`` the group's final text.
    Raises :class:`UnknownLogFormat` for a bad ``fmt`` before reading any line.
    """
    log_format = resolve_format(fmt)
    miner = TemplateMiner(config or OFFLINE_CONFIG)
    assigned: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=1):
        content = line.rstrip("\r\n") if log_format is None else log_format.content(line)
        if content is None or not content.strip():
            continue
        assigned.append((number, miner.add(content).template_id))
    final = {cid: miner.clusters[cid] for _, cid in assigned}  # merged ids answer the older template
    return [TemplateRow(n, final[cid].id, final[cid].text) for n, cid in assigned]
