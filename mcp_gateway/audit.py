"""One JSON line per call: who (key id), what (method and tool), a SHA-256 of the arguments
(never the arguments: they may hold data), the result's size, latency and outcome.

Appended to a file (``SEISMO_GATEWAY_AUDIT_FILE``) under a lock; each line is flushed.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from mcp_gateway.metrics import observe_record


def args_hash(arguments: Any) -> str:
    """SHA-256 of the arguments' canonical JSON (sorted keys, no spaces)."""
    canon = json.dumps(arguments, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canon.encode()).hexdigest()


@dataclass(frozen=True)
class AuditRecord:
    key_id: str
    role: str
    method: str
    tool: str | None
    args_sha256: str
    result_bytes: int
    latency_ms: float
    outcome: str
    ts: str = ""


class AuditLog:
    """Appends :class:`AuditRecord` lines; ``path`` None keeps them in memory (``records``)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.records: list[AuditRecord] = []
        self._lock = threading.Lock()
        self._fh: IO[str] | None = None

    def write(self, record: AuditRecord) -> None:
        rec = AuditRecord(**{**asdict(record), "ts": datetime.now(UTC).isoformat()})
        observe_record(rec)
        line = json.dumps(asdict(rec), separators=(",", ":"))
        with self._lock:
            if self.path is None:
                self.records.append(rec)
                del self.records[:-10_000]
                return
            if self._fh is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - held open
            self._fh.write(line + "\n")
            self._fh.flush()

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
