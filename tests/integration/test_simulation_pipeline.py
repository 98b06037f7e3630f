"""The simulator's output through the real worker: every injected fault opens an incident.

``seismo simulate`` → ``seismo ingest`` → ``seismo worker`` on isolated topics of the real
broker (and the worker's state in the real Redis); the incidents are read back from the
compacted incidents topic and matched against the ground truth by event id.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from schemas.codec import codec_for
from schemas.models import Incident
from tests.kafka_utils import Env, read_topic, stop, wait_worker_done

pytestmark = pytest.mark.kafka


def materialize(env: Env) -> list[Incident]:
    """The latest state of every incident on the incidents topic."""
    codec = codec_for("incident")
    latest: dict[bytes, Incident] = {}
    for key, value in read_topic(env.topic("incidents")):
        assert key is not None, "an incident without a key"
        if value is not None:
            latest[key] = Incident.from_avro(codec.decode(value))
    return list(latest.values())


def describe(incidents: list[Incident]) -> str:
    return "\n".join(
        f"  {i.id} {i.services} {i.opened_at:%H:%M:%S}-{i.updated_at:%H:%M:%S} "
        f"evidence={len(i.evidence)} title={i.title!r}"
        for i in sorted(incidents, key=lambda i: i.opened_at)
    )


def test_every_fault_the_simulator_injects_opens_an_incident_on_its_services(
    seismo_env: Env, tmp_path: Path
) -> None:
    out, truth_path = tmp_path / "sim.jsonl", tmp_path / "truth.json"
    seismo_env.seismo("simulate", "--services", "6", "--incidents", "3", "--seed", "7",
                      "--duration-minutes", "60", "--out", str(out), "--truth", str(truth_path))
    total = len(out.read_text().splitlines())
    truth: dict[str, dict[str, Any]] = json.loads(truth_path.read_text())["incidents"]
    assert len(truth) == 3

    result = seismo_env.seismo("ingest", str(out))
    assert f"{total} published, 0 rejected" in result.stdout, result.stdout

    worker = seismo_env.spawn("worker", log_name="worker")
    try:
        wait_worker_done(seismo_env, worker, total, 50)
    finally:
        stop(worker)

    # the correlator publishes an incident and waits for the ack before the offset is committed
    incidents = materialize(seismo_env)
    assert incidents, "the worker opened no incident at all"
    for name, fault in truth.items():
        caused = set(fault["event_ids"])
        services = {fault["root_cause"], *fault["affected"]}
        found = [i for i in incidents if caused & {e.event_id for e in i.evidence}]
        assert found, (
            f"no incident holds evidence of {name} ({fault['kind']} on {fault['root_cause']}, "
            f"{fault['onset']} to {fault['end']}); incidents:\n{describe(incidents)}"
        )
        assert any(services & set(i.services) for i in found), (
            f"the incidents holding evidence of {name} name none of {sorted(services)}:\n{describe(found)}"
        )
