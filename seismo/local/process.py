"""A background process Seismo started, remembered in a JSON state file.

``stop`` only ever signals a pid that this module recorded *and* whose command
line still contains the marker it was started with, so a recycled pid is never
killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path


class LocalServiceError(RuntimeError):
    """A local service could not be started or stopped; the message says why and what to do."""


@dataclass(frozen=True)
class ProcessRecord:
    name: str
    pid: int
    address: str
    log_path: str
    marker: str
    started_at: float


def child_pids(pid: int) -> list[int]:
    """The direct children of ``pid``, from /proc (Linux; empty elsewhere).  For tests and benches
    that look at a worker's step processes."""
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    out = []
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class ManagedProcess:
    """Start/stop/status of one named background process with a state file."""

    def __init__(self, name: str, state_dir: Path) -> None:
        self.name = name
        self.dir = state_dir / name
        self.state_file = self.dir / f"{name}.json"
        self._child: subprocess.Popen[bytes] | None = None  # when started by this object

    def record(self) -> ProcessRecord | None:
        """The recorded process if it is still alive and still ours, else ``None``."""
        try:
            rec = ProcessRecord(**json.loads(self.state_file.read_text()))
        except (OSError, ValueError, TypeError):
            return None
        if rec.marker not in _cmdline(rec.pid):
            return None
        return rec

    def start(
        self,
        argv: Sequence[str],
        *,
        address: str,
        marker: str,
        ready: Callable[[], bool],
        timeout: float,
        env: dict[str, str] | None = None,
    ) -> ProcessRecord:
        """Spawn ``argv`` detached, wait until ``ready()`` holds, record it.

        Blocks up to ``timeout`` seconds; raises :class:`LocalServiceError` with the
        log's tail when the process dies or never becomes ready.
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        log_path = self.dir / f"{self.name}.log"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, env={**os.environ, **(env or {})},
            )
        self._child = proc
        rec = ProcessRecord(self.name, proc.pid, address, str(log_path), marker, time.time())
        self.state_file.write_text(json.dumps(asdict(rec)))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise LocalServiceError(
                    f"{self.name} exited with code {proc.returncode} while starting; "
                    f"log {log_path}:\n{self.tail()}"
                )
            if marker in _cmdline(proc.pid) and ready():
                return rec
            time.sleep(0.5)
        self.stop()
        raise LocalServiceError(
            f"{self.name} did not become ready within {timeout:.0f}s; log {log_path}:\n{self.tail()}"
        )

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM the recorded process, SIGKILL after ``timeout``.  True if one was stopped."""
        rec = self.record()
        self.state_file.unlink(missing_ok=True)
        if rec is None:
            return False
        try:
            os.killpg(rec.pid, signal.SIGTERM)
        except ProcessLookupError:
            return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._child is not None and self._child.poll() is not None:
                return True
            if not _cmdline(rec.pid):  # gone, or a zombie of a child of ours
                self._reap_child()
                return True
            _reap(rec.pid)
            time.sleep(0.2)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(rec.pid, signal.SIGKILL)
        self._reap_child()
        return True

    def _reap_child(self) -> None:
        if self._child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._child.wait(5)

    def tail(self, lines: int = 20) -> str:
        try:
            text = (self.dir / f"{self.name}.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def _reap(pid: int) -> None:
    """Collect a child we started ourselves so it doesn't linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
