"""Workers joining and leaving every 10 s while a backlog is processed: the incidents of one worker,
no event lost, none doubled; every worker that leaves stops within its grace period."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from stream_processors.runtime.worker import GRACE_S
from tests.chaos.conftest import Reference, Services
from tests.chaos.workload import assert_same_outcome, feeder, new_env, wait_settled
from tests.kafka_utils import stop

pytestmark = [pytest.mark.kafka, pytest.mark.redis]

PERIOD_S = 10.0
CHANGES = 5  # join, leave, join, leave, join


def test_workers_joining_and_leaving_every_10s_during_a_backlog_yield_the_incidents_of_one_worker(
    services: Services, reference: Reference, tmp_path: Path
) -> None:
    records = reference.records
    env = new_env(tmp_path, "chaos", services.kafka.bootstrap, services.redis.url)
    half = len(records) // 2
    join_feeder = feeder(env, records[:half], pace_s=0.0)  # a backlog waiting ...
    join_feeder()
    join_feeder = feeder(env, records[half:], pace_s=CHANGES * PERIOD_S)  # ... and more arriving
    workers: list[tuple[str, subprocess.Popen[bytes]]] = [("w0", env.spawn("worker", log_name="w0"))]
    gone: list[str] = []
    try:
        for change in range(1, CHANGES + 1):
            time.sleep(PERIOD_S)  # the scenario's own period
            for name, proc in workers:
                assert proc.poll() is None, f"{name} exited:\n{env.log_tail(name)}"
            if change % 2:
                name = f"w{change}"
                workers.append((name, env.spawn("worker", log_name=name)))
            else:
                name, proc = workers.pop(0)
                proc.terminate()
                try:
                    assert proc.wait(GRACE_S) == 0, env.log_tail(name)
                except subprocess.TimeoutExpired:
                    raise AssertionError(f"{name} did not stop within {GRACE_S:.0f} s") from None
                gone.append(name)
        join_feeder()
        wait_settled(env, [p for _, p in workers], 180, [n for n, _ in workers] + gone)
    finally:
        for _, proc in workers:
            stop(proc)
    for name, proc in workers:
        assert proc.returncode == 0, env.log_tail(name)
    assert len(gone) == CHANGES // 2
    assert_same_outcome(reference.env, env, reference.events)
