"""The broker stopped for 30 s while events are being ingested and processed: the worker waits it out,
a worker told to stop meanwhile stops within its grace period, and once the broker is back every
event is enriched and the incidents are those of an undisturbed run, none doubled."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from stream_processors.runtime.worker import GRACE_S
from tests.chaos.conftest import Reference, Services
from tests.chaos.workload import assert_same_outcome, feeder, new_env, wait_settled
from tests.kafka_utils import consumed, stop, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.redis]

OUTAGE_S = 30.0


def test_a_broker_stopped_for_30s_mid_ingest_and_mid_processing_loses_no_event_and_doubles_no_incident(
    services_up: Services, reference: Reference, tmp_path: Path
) -> None:
    services, records = services_up, reference.records
    env = new_env(tmp_path, "chaos", services.kafka.bootstrap, services.redis.url)
    worker = env.spawn("worker", log_name="worker")
    leaving = env.spawn("worker", log_name="leaving")  # told to stop while the broker is down
    join_feeder = feeder(env, records, pace_s=20.0)
    try:
        group = f"seismo-test-{env.run}-normalize"

        def mid_way() -> bool:
            assert worker.poll() is None, env.log_tail("worker")
            done, end = consumed(group, env.topic("events.raw"), env.bootstrap)
            return done > 0 and end < len(records) // 2

        wait_for(mid_way, 60, "the workers to process the first events while ingest goes on", interval=0.2)
        services.kafka.stop()
        down = time.monotonic()
        leaving.send_signal(signal.SIGTERM)
        try:
            code = leaving.wait(GRACE_S)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"a worker did not stop within {GRACE_S:.0f} s of SIGTERM while the broker "
                                 f"was down:\n{env.log_tail('leaving')}") from None
        assert code == 0, env.log_tail("leaving")
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down)))  # the rest of the outage
        assert worker.poll() is None, f"the worker exited with the broker down:\n{env.log_tail('worker')}"
        services.kafka.start()
        join_feeder()
        wait_settled(env, [worker], 180, ["worker"])
    finally:
        stop(worker)
        stop(leaving)
    assert worker.returncode == 0, env.log_tail("worker")
    assert_same_outcome(reference.env, env, reference.events)
