"""The materialized incident table: latest state per incident id.

Written by one materializer thread, read by any number of request handlers;
every method takes the lock briefly and returns copies, never live views.
Listeners added with :meth:`IncidentStore.on_change` are called (on the writing
thread, outside the lock) with the id of every incident that changed.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from schemas.models import Incident, IncidentStatus


class InvalidCursor(ValueError):
    """The pagination cursor was not produced by this gateway."""


def _sort_key(inc: Incident) -> tuple[float, str]:
    # Newest update first; ties broken by id so pages are stable.
    return (-inc.updated_at.timestamp(), inc.id)


def encode_cursor(inc: Incident) -> str:
    raw = json.dumps([inc.updated_at.timestamp(), inc.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        ts, iid = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return (-float(ts), str(iid))
    except (ValueError, TypeError) as exc:
        raise InvalidCursor(f"invalid cursor {cursor!r}: pass next_cursor from a previous page") from exc


@dataclass(frozen=True)
class Page:
    incidents: list[Incident]
    next_cursor: str | None
    total: int


class IncidentStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, Incident] = {}
        self._listeners: list[Callable[[str], None]] = []
        self.caught_up = threading.Event()

    def on_change(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(incident_id)`` after each upsert or delete; it must not block or raise."""
        self._listeners.append(listener)

    def _changed(self, incident_id: str) -> None:
        for listener in list(self._listeners):
            listener(incident_id)

    def upsert(self, incident: Incident) -> None:
        with self._lock:
            self._by_id[incident.id] = incident
        self._changed(incident.id)

    def delete(self, incident_id: str) -> None:
        with self._lock:
            gone = self._by_id.pop(incident_id, None)
        if gone is not None:
            self._changed(incident_id)

    def all(self) -> list[Incident]:
        """Every incident (a copy of the table), in no particular order."""
        with self._lock:
            return list(self._by_id.values())

    def get(self, incident_id: str) -> Incident | None:
        with self._lock:
            return self._by_id.get(incident_id)

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_id)

    def query(
        self,
        status: IncidentStatus | None = None,
        service: str | None = None,
        since: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """Filter, sort newest-updated first, and return one page after ``cursor``.

        ``since`` keeps incidents updated at or after it.  Raises
        :class:`InvalidCursor` for a cursor this store did not issue.
        """
        after = decode_cursor(cursor) if cursor else None
        with self._lock:
            items = list(self._by_id.values())
        matched = [
            i for i in items
            if (status is None or i.status is status)
            and (service is None or service in i.services)
            and (since is None or i.updated_at >= since)
        ]
        matched.sort(key=_sort_key)
        matched_after = matched if after is None else [i for i in matched if _sort_key(i) > after]
        page = matched_after[:limit]
        more = len(matched_after) > limit
        return Page(page, encode_cursor(page[-1]) if more and page else None, len(matched))
