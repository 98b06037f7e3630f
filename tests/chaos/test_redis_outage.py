"""Redis down for 60 s mid-processing, and Redis flushed mid-processing: the worker waits (or carries
on from the states it holds), never exits, and ends with the undisturbed run's incidents, no event
lost and no incident doubled.  A worker told to stop while Redis is down stops within its grace.
A worker restarted after a flush degrades as documented and loses nothing."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from stream_processors.runtime.worker import GRACE_S
from tests.chaos.conftest import Reference, Services
from tests.chaos.workload import (
    assert_same_outcome,
    feeder,
    incidents,
    lost,
    new_env,
    run_worker_to_the_end,
    wait_settled,
)
from tests.kafka_utils import Env, consumed, stop, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.redis]

OUTAGE_S = 60.0
def wait_mid_processing(env: Env, worker: subprocess.Popen[bytes], total: int) -> None:
    """Until the worker committed some of the raw topic while less than half of it is published."""
    group = f"seismo-test-{env.run}"

    def mid_way() -> bool:
        assert worker.poll() is None, env.log_tail("worker")
        correlated, _ = consumed(f"{group}-correlate", env.topic("events.enriched"), env.bootstrap)
        _, published = consumed(f"{group}-normalize", env.topic("events.raw"), env.bootstrap)
        return correlated > 0 and published < total // 2

    wait_for(mid_way, 60, "the worker to correlate the first events while ingest goes on", interval=0.2)


def test_redis_down_for_60s_mid_processing_yields_the_undisturbed_incidents_and_a_stop_meanwhile_is_graceful(
    services_up: Services, reference: Reference, tmp_path: Path
) -> None:
    services, records = services_up, reference.records
    env = new_env(tmp_path, "chaos", services.kafka.bootstrap, services.redis.url)
    worker = env.spawn("worker", log_name="worker")
    leaving = env.spawn("worker", log_name="leaving")  # told to stop while Redis is down
    join_feeder = feeder(env, records, pace_s=20.0)
    try:
        wait_mid_processing(env, worker, len(records))
        services.redis.stop()
        down = time.monotonic()
        leaving.send_signal(signal.SIGTERM)
        try:
            code = leaving.wait(GRACE_S)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"a worker did not stop within {GRACE_S:.0f} s of SIGTERM while Redis was "
                                 f"down:\n{env.log_tail('leaving')}") from None
        assert code == 0, env.log_tail("leaving")
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down)))  # the rest of the outage
        assert worker.poll() is None, f"the worker exited with Redis down:\n{env.log_tail('worker')}"
        services.redis.start()
        join_feeder()
        wait_settled(env, [worker], 180, ["worker"])
    finally:
        stop(worker)
        stop(leaving)
    assert worker.returncode == 0, env.log_tail("worker")
    missing = lost(env, reference.events)
    assert not missing, f"{len(missing)} events never reached the enriched topic, e.g. {sorted(missing)[:5]}"
    assert_same_outcome(reference.env, env, reference.events)


def test_a_redis_flush_mid_processing_neither_crashes_the_worker_nor_changes_its_incidents(
    services_up: Services, reference: Reference, tmp_path: Path
) -> None:
    services, records = services_up, reference.records
    env = new_env(tmp_path, "chaos", services.kafka.bootstrap, services.redis.url)
    worker = env.spawn("worker", log_name="worker")
    join_feeder = feeder(env, records, pace_s=20.0)
    try:
        wait_mid_processing(env, worker, len(records))
        services.redis.flush()
        join_feeder()
        wait_settled(env, [worker], 180, ["worker"])
        assert services.redis.keys() > 0, "the worker saved no state after the flush"
    finally:
        stop(worker)
    assert worker.returncode == 0, env.log_tail("worker")
    assert "exited" not in env.log_tail("worker", 2000), "a step process died after the flush"
    assert_same_outcome(reference.env, env, reference.events)


def test_a_worker_restarted_after_a_redis_flush_runs_on_and_loses_no_event(
    services: Services, reference: Reference, tmp_path: Path
) -> None:
    """The documented degradation (docs/decisions.md, "Chaos"): states loaded after the flush start
    afresh, so incidents may be opened anew, but nothing crashes, nothing is lost, and every incident
    already published stays."""
    records = reference.records
    env = new_env(tmp_path, "chaos", services.kafka.bootstrap, services.redis.url)
    half = len(records) // 2
    feeder(env, records[:half], pace_s=0.0)()
    run_worker_to_the_end(env, 120, "before")
    services.redis.flush()
    worker = env.spawn("worker", log_name="after")
    try:
        feeder(env, records[half:], pace_s=0.0)()
        wait_settled(env, [worker], 120, ["after"])
        assert services.redis.keys() > 0, "the worker saved no state after the flush"
    finally:
        stop(worker)
    assert worker.returncode == 0, env.log_tail("after")
    missing = lost(env, reference.events)
    assert not missing, f"{len(missing)} events never reached the enriched topic"
    assert incidents(reference.env).keys() <= incidents(env).keys()
