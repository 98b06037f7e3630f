"""Rendering incidents for people (rich tables) and programs (JSON, CSV).

The default table is compact: one line per incident at 80 columns, the id never
wrapped or cut (it is what ``get_incident`` needs), times in UTC with the zone.
``wide`` adds sources, the update time and the whole title.  CSV uses ``\\n`` endings.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum

from rich.console import Console
from rich.table import Table

from schemas.models import Incident
from seismo.cliutil import plural


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


CSV_COLUMNS = ("id", "status", "severity", "services", "sources", "event_count", "opened_at",
               "updated_at", "resolved_at", "title")


def utc(when: datetime | None, seconds: bool = True) -> str:
    """``2024-05-01 12:00:00Z``: UTC, always with the zone; empty for None."""
    if when is None:
        return ""
    fmt = "%Y-%m-%d %H:%M:%SZ" if seconds else "%Y-%m-%d %H:%MZ"
    return when.astimezone(UTC).strftime(fmt)


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


def incidents_table(incidents: Sequence[Incident], console: Console, wide: bool = False) -> None:
    """Print the table (or ``no incidents``) to ``console``."""
    if not incidents:
        console.print("[dim]no incidents[/dim]")
        return
    table = Table(title=plural(len(incidents), "incident"), show_lines=False, pad_edge=False)
    table.add_column("id", no_wrap=True, min_width=len(incidents[0].id))
    table.add_column("status", no_wrap=True)
    table.add_column("severity" if wide else "sev", no_wrap=True)
    table.add_column("services", overflow="fold" if wide else "ellipsis", no_wrap=not wide, max_width=None
                     if wide else 18)
    if wide:
        table.add_column("sources", overflow="fold")
    table.add_column("events", justify="right", no_wrap=True)
    table.add_column("opened (UTC)", no_wrap=True)
    if wide:
        table.add_column("updated (UTC)", no_wrap=True)
    table.add_column("title", overflow="fold" if wide else "ellipsis", no_wrap=not wide, ratio=1)
    for inc in incidents:
        style = "red" if inc.status.value == "open" else "green"
        cells = [inc.id, f"[{style}]{inc.status.value}[/{style}]", inc.severity.value, ",".join(inc.services)]
        if wide:
            cells.append(",".join(inc.sources))
        cells += [str(inc.event_count), utc(inc.opened_at, seconds=wide)]
        if wide:
            cells.append(utc(inc.updated_at))
        cells.append(inc.title)
        table.add_row(*cells)
    console.print(table)
