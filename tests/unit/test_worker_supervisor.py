"""The supervisor of ``seismo worker``: a stop asked for while it spawns the steps is graceful."""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from typing import Any

import pytest

from stream_processors.runtime.worker import Supervisor


class FakeStdin:
    def __init__(self) -> None:
        self.written = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.written += data

    def close(self) -> None:
        self.closed = True


class FakeChild:
    """Stands in for a step process: alive until terminated."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.returncode: int | None = None
        self.terminated = False
        self.stdin = FakeStdin()

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


def test_the_children_start_while_the_topics_are_made_and_consume_only_after(
    monkeypatch: pytest.MonkeyPatch, saved_handlers: None,
) -> None:
    spawned: list[FakeChild] = []
    seen_at_prepare: list[tuple[int, list[bytes]]] = []

    def popen(argv: list[str], **_: Any) -> FakeChild:
        child = FakeChild(argv)
        spawned.append(child)
        return child

    def prepare() -> None:  # the children exist and have not been told to consume yet
        seen_at_prepare.append((len(spawned), [c.stdin.written for c in spawned]))
        os.kill(os.getpid(), signal.SIGTERM)  # then the operator stops the worker

    monkeypatch.setattr(subprocess, "Popen", popen)
    Supervisor([("normalize", 0), ("score", 0)], metrics_port=None, prepare=prepare).run()
    assert seen_at_prepare == [(2, [b"", b""])]
    assert all("--wait-go" in c.argv for c in spawned)
    # stopped during prepare: stdin closed without "go", so a waiting child returns unstarted
    assert [(c.stdin.written, c.stdin.closed) for c in spawned] == [(b"", True), (b"", True)]


def test_go_is_sent_once_prepare_returned(monkeypatch: pytest.MonkeyPatch, saved_handlers: None) -> None:
    spawned: list[FakeChild] = []

    def popen(argv: list[str], **_: Any) -> FakeChild:
        child = FakeChild(argv)
        spawned.append(child)
        if len(spawned) == 2:  # a child fails after "go", which ends the run
            def fail_later() -> None:
                while not child.stdin.closed:
                    time.sleep(0.01)
                child.returncode = 3
            threading.Thread(target=fail_later, daemon=True).start()
        return child

    monkeypatch.setattr(subprocess, "Popen", popen)
    with pytest.raises(SystemExit):
        Supervisor([("normalize", 0), ("score", 0)], metrics_port=None, prepare=lambda: None).run()
    assert [c.stdin.written for c in spawned] == [b"go\n", b"go\n"]


def test_a_failing_prepare_stops_the_children_and_raises(
    monkeypatch: pytest.MonkeyPatch, saved_handlers: None,
) -> None:
    spawned: list[FakeChild] = []

    def popen(argv: list[str], **_: Any) -> FakeChild:
        spawned.append(FakeChild(argv))
        return spawned[-1]

    monkeypatch.setattr(subprocess, "Popen", popen)

    def prepare() -> None:
        raise RuntimeError("broker unreachable")

    with pytest.raises(RuntimeError, match="broker unreachable"):
        Supervisor([("normalize", 0), ("score", 0)], metrics_port=None, prepare=prepare).run()
    assert all(c.terminated and c.stdin.closed and c.stdin.written == b"" for c in spawned)
