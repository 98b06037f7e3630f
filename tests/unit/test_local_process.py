"""The local service runner stops only what it started."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from seismo.local.process import LocalServiceError, ManagedProcess

SLEEPER = [sys.executable, "-c", "import time, sys; sys.argv.append('seismo-test-sleeper'); time.sleep(120)",
           "seismo-test-sleeper"]


def test_start_records_the_process_and_stop_ends_it(tmp_path: Path) -> None:
    mp = ManagedProcess("sleeper", tmp_path)
    rec = mp.start(SLEEPER, address="none", marker="seismo-test-sleeper", ready=lambda: True, timeout=10)
    assert mp.record() == rec
    assert json.loads(mp.state_file.read_text())["pid"] == rec.pid
    assert mp.stop(timeout=10) is True
    assert mp.record() is None
    assert not mp.state_file.exists()


def test_stop_never_signals_a_pid_whose_command_line_is_not_ours(tmp_path: Path) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        mp = ManagedProcess("kafka", tmp_path)
        mp.dir.mkdir(parents=True)
        mp.state_file.write_text(json.dumps({
            "name": "kafka", "pid": other.pid, "address": "x", "log_path": "x",
            "marker": "kafka.Kafka", "started_at": 0.0,
        }))
        assert mp.record() is None  # a recycled pid is not ours
        assert mp.stop(timeout=1) is False
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_a_process_that_dies_while_starting_raises_with_its_log(tmp_path: Path) -> None:
    mp = ManagedProcess("broken", tmp_path)
    argv = [sys.executable, "-c", "print('bad config: port in use'); raise SystemExit(3)"]
    with pytest.raises(LocalServiceError, match="exited with code 3") as info:
        mp.start(argv, address="none", marker="never", ready=lambda: False, timeout=10)
    assert "bad config: port in use" in str(info.value)


def test_stop_without_a_record_is_a_no_op(tmp_path: Path) -> None:
    assert ManagedProcess("nothing", tmp_path).stop() is False


def test_child_pids_lists_a_process_this_one_started_and_not_itself() -> None:
    import os
    import subprocess
    import sys

    from seismo.local.process import child_pids

    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        assert child.pid in child_pids(os.getpid())
        assert os.getpid() not in child_pids(os.getpid())
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(10)
    assert child.pid not in child_pids(os.getpid())
