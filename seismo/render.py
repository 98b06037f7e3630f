"""Rendering incidents for people (rich tables) and programs (JSON)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from schemas.models import Incident


def incidents_json(incidents: Sequence[Incident]) -> str:
    return json.dumps([i.model_dump(mode="json") for i in incidents], indent=2)


def incidents_table(incidents: Sequence[Incident], console: Console) -> None:
    if not incidents:
        console.print("[dim]no incidents[/dim]")
        return
    table = Table(title=f"{len(incidents)} incident(s)", show_lines=False)
    for col in ("id", "status", "severity", "services", "sources", "events", "opened", "title"):
        table.add_column(col, overflow="fold")
    for inc in incidents:
        style = "red" if inc.status.value == "open" else "green"
        table.add_row(
            inc.id, f"[{style}]{inc.status.value}[/{style}]", inc.severity.value,
            ",".join(inc.services), ",".join(inc.sources), str(inc.event_count),
            inc.opened_at.strftime("%Y-%m-%d %H:%M:%S"), inc.title,
        )
    console.print(table)
