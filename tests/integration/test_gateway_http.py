"""The gateway over streamable HTTP against the real broker, with the real ``mcp`` client:
authentication, roles, revocation, push on incident change (both protocol eras), fuzzed
arguments, and tools that refuse until the gateway caught up with Kafka."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from anyio.from_thread import start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp_types import ResourceUpdatedNotification

from mcp_gateway.auth.keys import KeyStore
from mcp_gateway.auth.roles import Role
from mcp_gateway.client import gateway_client
from producers.publisher import KafkaPublisher
from schemas.codec import codec_for
from schemas.feedback import Feedback
from schemas.models import Incident, IncidentStatus
from seismo.topics import ensure_topics
from tests.fakes.kubernetes import FakeKubernetes, kubeconfig, make_pod
from tests.kafka_utils import Env, free_port, read_topic, stop, wait_for, wait_healthy

pytestmark = pytest.mark.kafka

T0 = datetime(2024, 6, 1, 8, 0, tzinfo=UTC)
NOTIFY_WITHIN_S = 5.0


def incident(iid: str, revision: int, title: str = "api: errors") -> Incident:
    ts = T0 + timedelta(minutes=revision)
    return Incident(
        id=iid, revision=revision, status=IncidentStatus.OPEN, title=title, severity="error",
        opened_at=T0, updated_at=ts, services=["api"], sources=["sentry"],
        root_cause_candidates=[{"service": "api", "score": 1.0, "reason": "first"}],
        evidence=[{"event_id": f"e{revision}", "source": "sentry", "kind": "error", "timestamp": ts,
                   "service": "api", "severity": "error", "summary": "boom"}],
        event_count=revision,
    )


@dataclass
class Gateway:
    env: Env
    url: str
    keys: KeyStore
    tokens: dict[Role, str]
    audit: Path

    def publish(self, inc: Incident) -> None:
        pub = KafkaPublisher(self.env.settings.bootstrap)
        pub.publish(self.env.topic("incidents"), inc.id.encode(), codec_for("incident").encode(inc.to_avro()))
        pub.flush()


@pytest.fixture(scope="module")
def gw(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    env = Env(state_dir=tmp_path_factory.mktemp("gateway") / "state")
    env.state_dir.mkdir(parents=True)
    keys_file, audit = env.state_dir / "keys.json", env.state_dir / "audit.jsonl"
    stack = ExitStack()
    fake = stack.enter_context(FakeKubernetes())
    fake.pods = [make_pod("web-1", "shop", {"app": "web"})]
    kube = kubeconfig(env.state_dir / "kubeconfig", {"prod": fake.url}, "prod")
    sources = env.state_dir / "sources.toml"
    sources.write_text(f'[kubernetes]\nkubeconfig = "{kube}"\nnamespaces = ["shop"]\n')
    env.extra.update({"SEISMO_EMBEDDER": "off", "SEISMO_STATE_BACKEND": "memory",
                      "SEISMO_GATEWAY_KEYS_FILE": str(keys_file), "SEISMO_GATEWAY_AUDIT_FILE": str(audit),
                      "SEISMO_GATEWAY_SOURCES_CONFIG": str(sources)})
    ensure_topics(env.settings)
    keys = KeyStore(keys_file)
    tokens = {role: keys.create(f"test-{role.value}", role)[1] for role in Role}
    port = free_port()
    gateway = Gateway(env, f"http://127.0.0.1:{port}/mcp", keys, tokens, audit)
    gateway.publish(incident("inc-1", 1))
    proc = env.spawn("gateway", "--port", str(port), log_name="gateway")
    try:
        wait_healthy(f"http://127.0.0.1:{port}/healthz", proc)
        yield gateway
    except BaseException:
        print(env.log_tail("gateway"))
        raise
    finally:
        stop(proc)
        stack.close()


def initialize_body() -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}


HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def test_a_call_without_a_valid_key_is_refused_with_401_and_www_authenticate(gw: Gateway) -> None:
    for auth in ({}, {"Authorization": "Bearer sk-seismo-nope-nope"}, {"Authorization": "Bearer junk"}):
        res = httpx.post(gw.url, json=initialize_body(), headers={**HEADERS, **auth}, timeout=10)
        assert res.status_code == 401, res.text
        assert res.headers["www-authenticate"].startswith("Bearer")
    ok = httpx.post(gw.url, json=initialize_body(),
                    headers={**HEADERS, "Authorization": f"Bearer {gw.tokens[Role.VIEWER]}"}, timeout=10)
    assert ok.status_code == 200


def test_a_viewer_gets_incident_tools_and_a_403_tool_error_for_live_and_admin_tools(gw: Gateway) -> None:
    async def scenario() -> None:
        async with gateway_client(gw.url, gw.tokens[Role.VIEWER]) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert {"list_incidents", "get_incident", "explain_incident"} <= names
            assert "record_feedback" not in names and not any(n.startswith("k8s_") for n in names)
            listed = await client.call_tool("list_incidents", {})
            assert not listed.is_error and listed.structured_content is not None
            for tool, args in (("k8s_list_pods", {}), ("record_feedback", {"incident_id": "inc-1",
                                                                            "outcome": "duplicate"})):
                res = await client.call_tool(tool, args)
                assert res.is_error and "403 forbidden" in str(res.content), res.content

    anyio.run(scenario)

    async def investigator() -> None:
        async with gateway_client(gw.url, gw.tokens[Role.INVESTIGATOR]) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert "k8s_list_pods" in names and "record_feedback" not in names
            res = await client.call_tool("k8s_list_pods", {"namespace": "shop"})
            assert not res.is_error and "web-1" in str(res.structured_content), res.content

    anyio.run(investigator)
    lines = [json.loads(line) for line in gw.audit.read_text().splitlines()]
    forbidden = [r for r in lines if r["outcome"] == "Forbidden"]
    assert {r["tool"] for r in forbidden} >= {"k8s_list_pods", "record_feedback"}
    assert all(len(r["args_sha256"]) == 64 and r["key_id"] for r in lines)


def test_a_revoked_key_stops_working_without_a_restart(gw: Gateway) -> None:
    key, token = gw.keys.create("short-lived", Role.VIEWER)

    async def works() -> bool:
        try:
            async with gateway_client(gw.url, token) as client:
                return not (await client.call_tool("list_incidents", {})).is_error
        except Exception:  # the SDK raises its own errors for a 401 on connect
            return False

    assert anyio.run(works)
    gw.keys.revoke(key.id)
    assert not anyio.run(works)
    res = httpx.post(gw.url, json=initialize_body(), headers={**HEADERS, "Authorization": f"Bearer {token}"})
    assert res.status_code == 401


def test_a_listen_subscriber_hears_of_an_incident_change_within_five_seconds(gw: Gateway) -> None:
    async def scenario() -> str:
        async with gateway_client(gw.url, gw.tokens[Role.VIEWER]) as client:
            assert client.protocol_version == "2026-07-28"
            async with client.listen(resource_subscriptions=["incident://inc-1"]) as sub:
                await anyio.to_thread.run_sync(gw.publish, incident("inc-1", 2, "api: more errors"))
                heard = False
                with anyio.fail_after(NOTIFY_WITHIN_S):
                    async for event in sub:
                        if str(getattr(event, "uri", "")) == "incident://inc-1":
                            heard = True
                            break
                assert heard, "the listen stream ended without the change"
            got = await client.read_resource("incident://inc-1")
            return str(got.contents[0].text)  # type: ignore[union-attr]

    assert json.loads(anyio.run(scenario))["title"] == "api: more errors"


def test_a_legacy_subscriber_gets_resources_updated_within_five_seconds(gw: Gateway) -> None:
    heard = anyio.Event()

    async def handler(message: Any) -> None:
        if isinstance(message, ResourceUpdatedNotification) and str(message.params.uri) == "incident://inc-1":
            heard.set()

    async def scenario() -> None:
        viewer = gw.tokens[Role.VIEWER]
        async with gateway_client(gw.url, viewer, mode="legacy", message_handler=handler) as client:
            with warnings.catch_warnings():  # resources/subscribe is the legacy path on purpose
                warnings.simplefilter("ignore", MCPDeprecationWarning)
                await client.subscribe_resource("incident://inc-1")
            await anyio.to_thread.run_sync(gw.publish, incident("inc-1", 3, "api: still failing"))
            with anyio.fail_after(NOTIFY_WITHIN_S):
                await heard.wait()

    anyio.run(scenario)


def test_every_tool_refuses_with_a_retryable_error_until_the_store_caught_up(seismo_env: Env) -> None:
    seismo_env.extra.update({"SEISMO_KAFKA_BOOTSTRAP": "127.0.0.1:1", "SEISMO_EMBEDDER": "off",
                             "SEISMO_STATE_BACKEND": "memory",
                             "SEISMO_GATEWAY_KEYS_FILE": str(seismo_env.state_dir / "keys.json")})
    _, token = KeyStore(seismo_env.state_dir / "keys.json").create("t", Role.ADMIN)
    port = free_port()
    proc = seismo_env.spawn("gateway", "--port", str(port), log_name="gateway")
    health = f"http://127.0.0.1:{port}/healthz"

    def answers() -> bool:
        assert proc.poll() is None, seismo_env.log_tail("gateway")
        try:
            return httpx.get(health, timeout=1).status_code == 503
        except httpx.HTTPError:
            return False

    async def scenario() -> list[Any]:
        async with gateway_client(f"http://127.0.0.1:{port}/mcp", token) as client:
            return [await client.call_tool(name, args) for name, args in (
                ("list_incidents", {}), ("get_incident", {"id": "x"}), ("service_health", {}))]

    try:
        wait_for(answers, 30, "the gateway to answer /healthz with 503")
        for res in anyio.run(scenario):
            text = str(res.content)
            assert res.is_error and "not caught up with Kafka" in text and "retryable" in text, text
            assert res.structured_content is None
    finally:
        stop(proc)


TOOLS = ["list_incidents", "get_incident", "incident_timeline", "explain_incident", "similar_incidents",
         "search_events", "what_changed", "service_health", "list_anomalies", "record_feedback",
         "k8s_list_pods"]
FIELDS = ["id", "incident_id", "service", "status", "since", "until", "before", "cursor", "max_items",
          "max_tokens", "query", "source", "window_minutes", "min_score", "outcome", "note", "max_candidates"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
    | st.sampled_from(["inc-1", "open", "2024-06-01T08:00:00Z", "2024-06-01T08:00:00", "api", "-1", "\x00"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
arguments = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), json_values, max_size=5)


def test_fuzzed_tool_arguments_never_give_a_500_or_a_traceback(gw: Gateway) -> None:
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(gateway_client(gw.url, gw.tokens[Role.ADMIN])) as client,
    ):
        @settings(max_examples=200, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow])
        @given(name=st.sampled_from(TOOLS), args=arguments)
        def one_call(name: str, args: dict[str, Any]) -> None:
            res = portal.call(client.call_tool, name, args)
            text = str(res.content)
            assert "Traceback" not in text and 'File "' not in text, text
            if res.is_error:
                assert text.strip(), "an error without a reason"
            else:
                assert res.structured_content is not None

        one_call()


@settings(max_examples=100, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode())
       | st.builds(lambda n, a: json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                             "params": {"name": n, "arguments": a}}).encode(),
                   st.sampled_from(TOOLS), arguments))
def test_fuzzed_http_bodies_never_give_a_500_or_a_traceback(body: bytes) -> None:
    url, token = FUZZ_TARGET
    for version in ("2025-06-18", "2026-07-28"):
        res = httpx.post(url, content=body, timeout=10, headers={
            **HEADERS, "Authorization": f"Bearer {token}", "MCP-Protocol-Version": version})
        assert res.status_code < 500, (res.status_code, res.text)
        assert "Traceback" not in res.text


FUZZ_TARGET: tuple[str, str] = ("", "")


@pytest.fixture(autouse=True)
def _fuzz_target(request: pytest.FixtureRequest) -> None:
    if request.function is test_fuzzed_http_bodies_never_give_a_500_or_a_traceback:
        gw: Gateway = request.getfixturevalue("gw")
        global FUZZ_TARGET
        FUZZ_TARGET = (gw.url, gw.tokens[Role.VIEWER])


def test_an_admin_records_feedback_on_the_compacted_topic_and_get_incident_shows_it(gw: Gateway) -> None:
    async def scenario() -> dict[str, Any]:
        async with gateway_client(gw.url, gw.tokens[Role.ADMIN]) as client:
            res = await client.call_tool("record_feedback", {
                "incident_id": "inc-1", "outcome": "resolved_by_remediation", "remediation": "rollback"})
            assert not res.is_error, res.content
            assert res.structured_content is not None
            assert res.structured_content["topic"] == gw.env.topic("feedback")
            missing = await client.call_tool("record_feedback", {"incident_id": "nope",
                                                                 "outcome": "duplicate"})
            assert missing.is_error and "no incident with id 'nope'" in str(missing.content)
            got = await client.call_tool("get_incident", {"id": "inc-1"})
            assert got.structured_content is not None
            return got.structured_content

    assert anyio.run(scenario)["feedback"] == "resolved_by_remediation"
    records = read_topic(gw.env.topic("feedback"))
    assert records and {k for k, _ in records} == {b"inc-1"}
    fb = Feedback.from_avro(codec_for("feedback").decode(records[-1][1] or b""))
    admin = gw.keys.verify(gw.tokens[Role.ADMIN])
    assert admin is not None and fb.remediation == "rollback" and fb.recorded_by == admin.id


def _calls(gw: Gateway, tool: str, outcome: str) -> float:
    text = httpx.get(gw.url.removesuffix("/mcp") + "/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("seismo_gateway_calls_total{") and f'tool="{tool}"' in line \
                and f'outcome="{outcome}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_count_every_call_by_tool_and_outcome_without_a_key(gw: Gateway) -> None:
    ok_before = _calls(gw, "list_incidents", "ok")
    denied_before = _calls(gw, "k8s_list_pods", "Forbidden")

    async def scenario() -> None:
        async with gateway_client(gw.url, gw.tokens[Role.VIEWER]) as client:
            for _ in range(2):
                assert not (await client.call_tool("list_incidents", {})).is_error
            assert (await client.call_tool("k8s_list_pods", {})).is_error

    anyio.run(scenario)
    assert _calls(gw, "list_incidents", "ok") == ok_before + 2
    assert _calls(gw, "k8s_list_pods", "Forbidden") == denied_before + 1
