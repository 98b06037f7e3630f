"""Rendering incidents for people (rich tables) and programs (JSON, CSV).

The default table is compact: one line per incident, never wrapped, the id never
cut (it is what ``get_incident`` needs), times in UTC with the zone; the title is
cut to the terminal's width.  ``wide`` adds sources and the update time and cuts
nothing.  CSV uses ``\\n`` endings.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum

from rich.console import Console

from schemas.models import Incident
from seismo.cliutil import plural


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


CSV_COLUMNS = ("id", "status", "severity", "services", "sources", "event_count", "opened_at",
               "updated_at", "resolved_at", "title")


def utc(when: datetime | None, short: bool = False) -> str:
    """``2024-05-01 12:00:00Z`` (``short``: ``05-01 12:00Z``): UTC, always with the zone; empty for None."""
    if when is None:
        return ""
    return when.astimezone(UTC).strftime("%m-%d %H:%MZ" if short else "%Y-%m-%d %H:%M:%SZ")


def incidents_json(incidents: Sequence[Incident]) -> str:
    return json.dumps([i.model_dump(mode="json") for i in incidents], indent=2)


def incidents_csv(incidents: Sequence[Incident]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for inc in incidents:
        writer.writerow([inc.id, inc.status.value, inc.severity.value, " ".join(inc.services),
                         " ".join(inc.sources), inc.event_count, inc.opened_at.isoformat(),
                         inc.updated_at.isoformat(), inc.resolved_at.isoformat() if inc.resolved_at else "",
                         inc.title])
    return buffer.getvalue()


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def incidents_table(incidents: Sequence[Incident], console: Console, wide: bool = False) -> None:
    """Print one line per incident (or ``no incidents``) to ``console``, never wrapped.

    Compact: id, status, severity, opening time, services (cut to 12 characters) and the
    title cut to the console's width; ``wide`` adds the event count, sources and the update
    time, and cuts nothing (lines may be long).
    """
    if not incidents:
        console.print("[dim]no incidents[/dim]")
        return
    if wide:
        header = ["ID", "STATUS", "SEVERITY", "EVENTS", "OPENED (UTC)", "UPDATED (UTC)", "SERVICES",
                  "SOURCES", "TITLE"]
        rows = [[i.id, i.status.value, i.severity.value, str(i.event_count), utc(i.opened_at),
                 utc(i.updated_at), ",".join(i.services), ",".join(i.sources), i.title] for i in incidents]
    else:
        header = ["ID", "STATUS", "SEVERITY", "OPENED", "SERVICES", "TITLE"]
        rows = [[i.id, i.status.value, i.severity.value, utc(i.opened_at, short=True),
                 _cut(",".join(i.services), 12), i.title] for i in incidents]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    used = sum(widths) + 2 * len(widths)
    room = None if wide else max(console.width - used, 12)
    console.print(plural(len(incidents), "incident"), highlight=False)
    for cells in [header, *rows]:
        lead = "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=False))
        title = cells[-1] if room is None else _cut(cells[-1], room)
        console.print(f"{lead}  {title}", markup=False, highlight=False, soft_wrap=True, crop=False)
