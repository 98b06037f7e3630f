"""The supervisor of ``seismo worker``: a stop asked for while it spawns the steps is graceful."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Any

import pytest

from stream_processors.runtime.worker import Supervisor


class FakeChild:
    """Stands in for a step process: alive until terminated."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.returncode: int | None = None
        self.terminated = False

    def poll(self) -> int | None:
        return self.returncode

    def terminate(self) -> None:
        self.terminated = True
        self.returncode = 0

    def kill(self) -> None:
        self.returncode = -9

    def wait(self, timeout: float | None = None) -> int:
        while self.returncode is None:  # the watch threads block here until terminate()
            time.sleep(0.01)
        return self.returncode


@pytest.fixture
def saved_handlers() -> Any:
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_sigterm_during_spawning_stops_the_spawned_children_and_spawns_no_more(
    monkeypatch: pytest.MonkeyPatch, saved_handlers: None,
) -> None:
    spawned: list[FakeChild] = []
    handler_at_spawn: list[Any] = []

    def popen(argv: list[str], **_: Any) -> FakeChild:
        handler_at_spawn.append(signal.getsignal(signal.SIGTERM))
        child = FakeChild(argv)
        spawned.append(child)
        if len(spawned) == 1:  # the operator's stop lands while the first step starts
            os.kill(os.getpid(), signal.SIGTERM)
        return child

    monkeypatch.setattr(subprocess, "Popen", popen)
    members = [("normalize", 0), ("correlate", 0), ("score", 0)]
    Supervisor(members, metrics_port=None).run()  # returns (no SystemExit): a graceful stop

    assert handler_at_spawn[0] not in (signal.SIG_DFL, signal.default_int_handler)
    assert len(spawned) == 1, "no step is started after the stop"
    assert all(c.terminated for c in spawned)


def test_a_child_that_dies_on_its_own_fails_the_worker(
    monkeypatch: pytest.MonkeyPatch, saved_handlers: None,
) -> None:
    spawned: list[FakeChild] = []

    def popen(argv: list[str], **_: Any) -> FakeChild:
        child = FakeChild(argv)
        spawned.append(child)
        if len(spawned) == 2:
            child.returncode = 1  # the correlate step crashed
        return child

    monkeypatch.setattr(subprocess, "Popen", popen)
    with pytest.raises(SystemExit) as exc:
        Supervisor([("normalize", 0), ("correlate", 0)], metrics_port=None).run()
    assert exc.value.code == 1
    assert spawned[0].terminated
