"""``seismo worker``: the Faust agents and the score runtime, together or one role at a time.

* ``stream`` — the Faust app (normalize → correlate), :func:`stream_processors.app.create_app`;
* ``score`` — :class:`stream_processors.score.adapter.ScoreRuntime`;
* ``all`` (the default) — ``stream`` in this process and ``score`` in a child
  process (one core each; the GIL would make them share one).  The child gets
  SIGTERM when this process dies, however it dies; if the child exits on its own,
  this process stops too and exits non-zero, so a supervisor (Kubernetes,
  docker-compose) restarts the pair.

Every role creates the topics it needs first (idempotent).  All block until
SIGINT/SIGTERM.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
from typing import Literal

from seismo.settings import Settings
from seismo.topics import ensure_topics

log = logging.getLogger(__name__)
Role = Literal["all", "stream", "score"]
ROLES: tuple[Role, ...] = ("all", "stream", "score")
_PR_SET_PDEATHSIG = 1


def run_score_worker(settings: Settings) -> None:
    """Run the score runtime until SIGINT/SIGTERM, then checkpoint and return."""
    from stream_processors.app import state_store
    from stream_processors.score.adapter import ScoreRuntime

    runtime = ScoreRuntime(settings, state_store(settings))
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: runtime.stop())
    log.info("score runtime consuming as group %s", runtime.group_id)
    runtime.run()


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _spawn_scorer() -> subprocess.Popen[bytes]:
    preexec = _die_with_parent if sys.platform.startswith("linux") else None
    return subprocess.Popen(
        [sys.executable, "-m", "seismo", "worker", "--role", "score"], preexec_fn=preexec
    )


def run_worker(settings: Settings, role: Role = "all") -> None:
    """Run ``role`` until SIGINT/SIGTERM.  Blocks; raises SystemExit(1) if the scorer child died."""
    from stream_processors.app import run_faust_worker

    ensure_topics(settings)
    if role == "score":
        run_score_worker(settings)
        return
    if role == "stream":
        run_faust_worker(settings)
        return
    child = _spawn_scorer()
    stopping = threading.Event()
    child_failed = threading.Event()

    def watch() -> None:
        code = child.wait()
        if not stopping.is_set():
            log.error("the score runtime exited with %s; stopping the worker", code)
            child_failed.set()
            os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="scorer-watch", daemon=True).start()
    code: int | str | None = 0
    try:
        run_faust_worker(settings)
    except SystemExit as exc:  # Faust's worker exits through sys.exit
        code = exc.code
    finally:
        stopping.set()
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    if child_failed.is_set():
        raise SystemExit(1)
    if code:
        raise SystemExit(code)
