"""End to end on the real broker: ingest → worker → incidents topic → MCP over streamable HTTP."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcp_gateway.auth.keys import KeyStore
from mcp_gateway.auth.roles import Role
from mcp_gateway.client import gateway_client
from schemas.codec import codec_for
from schemas.models import DeadLetter, Event
from tests.kafka_utils import Env, free_port, read_topic, stop, wait_for, wait_healthy, wait_worker_done

pytestmark = pytest.mark.kafka

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def line(
    i: str,
    service: str,
    minutes: float,
    severity: str = "info",
    kind: str = "log",
    source: str = "kubernetes",
    **extra: Any,
) -> str:
    ts = (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")
    return json.dumps(
        {
            "id": i,
            "source": source,
            "kind": kind,
            "timestamp": ts,
            "service": service,
            "severity": severity,
            "message": f"{service} says {i}",
            **extra,
        }
    )


def scenario_file(path: Path) -> tuple[list[str], dict[str, set[str]]]:
    """A JSONL file with two services and 3 malformed lines; the incidents it must produce."""
    lines = [
        line("c-1", "checkout", 0),
        line("p-1", "payments", 0),
        line("c-err-1", "checkout", 1, "error", source="sentry", kind="error"),
        line("c-err-2", "checkout", 2, "critical", source="cloudwatch", kind="alert"),
        "{this is not json",
        line("p-err-1", "payments", 3, "error"),
        line("c-2", "checkout", 3),
        json.dumps(
            {
                "source": "kubernetes",
                "kind": "log",
                "service": "payments",
                "severity": "error",
                "message": "no timestamp",
            }
        ),
        line("c-err-3", "checkout", 4, "error", source="grafana", kind="alert"),
        line("p-2", "payments", 5),
        line("p-bad-sev", "payments", 6, "loud"),
        line("p-3", "payments", 20),  # quiet > 10 min since p-err-1: resolves payments' incident
        # another problem (another message: the same one within 15 minutes would reopen the first)
        line("p-err-2", "payments", 21, "error", source="sentry", kind="error", message="bank refused"),
        line("p-err-2b", "payments", 21.5, "error", source="sentry", kind="error", message="bank refused"),
        line("c-3", "checkout", 6),
        # one stray error opens nothing (issue #10): each payments incident is a burst of one message
        line("p-err-1b", "payments", 3.5, "error", message="payments says p-err-1"),
    ]
    path.write_text("\n".join(lines) + "\n")
    valid = [json.loads(x)["id"] for x in lines if _valid(x)]
    expected = {
        "checkout": {"c-err-1", "c-err-2", "c-err-3"},
        "payments#1": {"p-err-1", "p-err-1b"},
        "payments#2": {"p-err-2", "p-err-2b"},
    }
    return valid, expected


def _valid(text: str) -> bool:
    try:
        d = json.loads(text)
    except json.JSONDecodeError:
        return False
    return "timestamp" in d and d.get("severity") != "loud"


KEYS: dict[str, str] = {}  # the viewer key of each running gateway, by its URL


async def list_over_http(url: str, **args: Any) -> list[dict[str, Any]]:
    """Every incident the gateway lists (pages of 2), each in full from get_incident."""
    out: list[dict[str, Any]] = []
    cursor = None
    async with gateway_client(url, KEYS[url]) as client:
        while True:
            res = await client.call_tool("list_incidents", {**args, "limit": 2, "cursor": cursor})
            assert not res.is_error, res.content
            data = res.structured_content
            assert isinstance(data, dict)
            for brief in data["incidents"]:
                full = await client.call_tool("get_incident", {"id": brief["id"], "max_items": 100})
                assert not full.is_error and isinstance(full.structured_content, dict), full.content
                out.append(full.structured_content)
            cursor = data["next_cursor"]
            if cursor is None:
                return out


def evidence_sets(incidents: list[dict[str, Any]]) -> list[frozenset[str]]:
    return sorted((frozenset(e["event_id"] for e in i["evidence"]) for i in incidents), key=sorted)


@pytest.fixture
def pipeline(seismo_env: Env) -> Any:
    keys = seismo_env.state_dir / "keys.json"
    seismo_env.extra["SEISMO_GATEWAY_KEYS_FILE"] = str(keys)
    worker = seismo_env.spawn("worker", log_name="worker")
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    KEYS[url] = KeyStore(keys).create("pipeline-test", Role.VIEWER)[1]
    gateway = seismo_env.spawn("gateway", "--port", str(port), log_name="gateway")
    try:
        wait_healthy(f"http://127.0.0.1:{port}/healthz", gateway)
        yield worker, url
    finally:
        stop(worker)
        stop(gateway)


def test_ingested_events_become_incidents_listed_over_streamable_http(
    seismo_env: Env, pipeline: Any, tmp_path: Path
) -> None:
    worker, url = pipeline
    path = tmp_path / "events.jsonl"
    valid, expected = scenario_file(path)
    out = seismo_env.seismo("ingest", str(path))
    assert f"{len(valid)} published, 3 rejected" in out.stdout

    want = sorted((frozenset(v) for v in expected.values()), key=sorted)

    def listed() -> bool:
        assert worker.poll() is None, seismo_env.log_tail("worker")
        return evidence_sets(anyio.run(list_over_http, url)) == want

    try:
        wait_for(listed, 30, "the expected incidents over MCP", interval=1.0)
    except AssertionError:
        raise AssertionError(
            f"got {anyio.run(list_over_http, url)}\n{seismo_env.log_tail('worker')}"
        ) from None
    incidents = anyio.run(list_over_http, url)
    by_first = {min(e["event_id"] for e in i["evidence"]): i for i in incidents}
    assert by_first["c-err-1"]["services"] == ["checkout"]
    assert by_first["c-err-1"]["sources"] == ["cloudwatch", "grafana", "sentry"]
    assert by_first["c-err-1"]["severity"] == "critical"
    assert by_first["p-err-1"]["status"] == "resolved"
    assert by_first["p-err-2"]["status"] == "open"
    open_only = anyio.run(lambda: list_over_http(url, status="open", service="payments"))
    assert [i["id"] for i in open_only] == [by_first["p-err-2"]["id"]]

    # the malformed lines are dead letters with their line numbers and reasons
    dead = [
        DeadLetter.from_avro(codec_for("dead_letter").decode(v))
        for _, v in read_topic(seismo_env.topic("dlq"))
        if v
    ]
    assert sorted(d.line_number or 0 for d in dead) == [5, 8, 11]
    reasons = {d.line_number: d.reason for d in dead}
    assert "not valid JSON" in reasons[5] and "timestamp" in reasons[8] and "severity" in reasons[11]
    assert all(d.component == "ingest" and d.payload for d in dead)

    # no valid event is missing from the enriched stream
    enriched = [
        Event.from_avro(codec_for("event").decode(v))
        for _, v in read_topic(seismo_env.topic("events.enriched"))
        if v
    ]
    assert sorted({e.id for e in enriched}) == sorted(valid)
    assert all(e.template is not None and e.template_id for e in enriched)
    assert all(e.novelty is not None and 0.0 <= e.novelty <= 1.0 for e in enriched if e.kind.value == "log")

    # re-ingesting the same file creates no incident and no duplicate evidence
    seismo_env.seismo("ingest", str(path))
    wait_worker_done(seismo_env, worker, 2 * len(valid), 60)
    again = anyio.run(list_over_http, url)
    assert evidence_sets(again) == want
    assert sorted(i["id"] for i in again) == sorted(i["id"] for i in incidents)
    assert all(len(i["evidence"]) == len({e["event_id"] for e in i["evidence"]}) for i in again)

    # `seismo incidents --json` prints the same list
    cli = json.loads(seismo_env.seismo("incidents", "--json").stdout)
    assert sorted(i["id"] for i in cli) == sorted(i["id"] for i in incidents)


def test_undecodable_messages_go_to_the_dlq_and_the_worker_keeps_going(
    seismo_env: Env, pipeline: Any, tmp_path: Path
) -> None:
    from producers.publisher import KafkaPublisher

    worker, url = pipeline
    pub = KafkaPublisher(seismo_env.settings.bootstrap)
    raw = seismo_env.topic("events.raw")
    pub.publish(raw, b"svc", b"\x00garbage")
    pub.publish(raw, b"svc", b"\xc3\x01" + b"\x01" * 8 + b"body")
    ok = Event(
        id="after-garbage",
        source="file",
        kind="error",
        timestamp=T0,
        service="svc",
        severity="error",
        message="still flowing",
    )
    pub.publish(raw, b"svc", codec_for("event").encode(ok.to_avro()))
    again = ok.model_copy(update={"id": "after-garbage-2", "timestamp": T0 + timedelta(seconds=20)})
    pub.publish(raw, b"svc", codec_for("event").encode(again.to_avro()))  # a burst, not a stray error
    pub.flush()

    def has_incident() -> bool:
        assert worker.poll() is None, seismo_env.log_tail("worker")
        return any(
            e["event_id"] == "after-garbage" for i in anyio.run(list_over_http, url) for e in i["evidence"]
        )

    wait_for(has_incident, 30, "the valid event after the garbage to become an incident", interval=1.0)
    dead = [
        DeadLetter.from_avro(codec_for("dead_letter").decode(v))
        for _, v in read_topic(seismo_env.topic("dlq"))
    ]
    assert len(dead) == 2
    assert {d.error_type for d in dead} == {"undecodable"}
    assert {d.payload for d in dead} == {b"\x00garbage", b"\xc3\x01" + b"\x01" * 8 + b"body"}
    assert all(d.component == "normalize" and d.topic == raw and d.offset is not None for d in dead)
    assert any("unknown schema fingerprint" in d.reason for d in dead)
    assert isinstance(worker, subprocess.Popen)
