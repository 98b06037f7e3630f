"""CloudWatch live tools where moto cannot help: AWS error codes, alarm history, the 10,000-row split.

boto3 clients with botocore's own :class:`~botocore.stub.Stubber` stand in for AWS
(the moto-backed tests are in tests/integration/test_live_cloudwatch.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from mcp import Client
from mcp.server.mcpserver import MCPServer

from mcp_gateway.live import cloudwatch as live_cw
from mcp_gateway.live import register_live_tools
from mcp_gateway.live.errors import NotFound, Rejected, Retryable
from producers.config import PollersFile
from producers.ratelimit import FakeClock
from producers.sources.cloudwatch import CloudWatchClients
from producers.sources.cloudwatch_insights import ROW_CAP


def error(code: str, status: int) -> ClientError:
    body: Any = {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(body, "GetMetricData")


@pytest.mark.parametrize(("exc", "kind"), [
    (error("ThrottlingException", 400), Retryable),
    (error("ServiceUnavailable", 503), Retryable),
    (error("InternalFailure", 500), Retryable),
    (error("ResourceNotFoundException", 400), NotFound),
    (error("AccessDeniedException", 400), Rejected),
])
def test_aws_errors_map_to_what_the_assistant_does_next(exc: ClientError, kind: type[Exception]) -> None:
    assert isinstance(live_cw.translate(exc, "metric x"), kind)


@pytest.fixture
def stubbed(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[MCPServer, Stubber, Stubber]]:
    kw: dict[str, Any] = {"region_name": "eu-west-1", "aws_access_key_id": "k", "aws_secret_access_key": "s"}
    clients = CloudWatchClients(boto3.client("logs", **kw), boto3.client("cloudwatch", **kw))
    monkeypatch.setattr(live_cw, "make_clients", lambda settings: clients)
    server = MCPServer("test")
    with ExitStack() as stack, Stubber(clients.logs) as logs, Stubber(clients.cloudwatch) as cw:
        register_live_tools(server, PollersFile(cloudwatch={"region": "eu-west-1"}), clock=FakeClock(),
                            stack=stack)
        yield server, logs, cw


def call(server: MCPServer, name: str, args: dict[str, Any]) -> Any:
    async def go() -> Any:
        async with Client(server) as client:
            return await client.call_tool(name, args)

    return anyio.run(go)


def test_alarm_history_lists_items_newest_first(stubbed: tuple[MCPServer, Stubber, Stubber]) -> None:
    server, _, cw = stubbed
    now = datetime.now(UTC)
    cw.add_response("describe_alarm_history", {"AlarmHistoryItems": [
        {"AlarmName": "payments-5xx", "Timestamp": now - timedelta(minutes=m),
         "HistoryItemType": "StateUpdate", "HistorySummary": f"Alarm updated from OK to ALARM ({m})"}
        for m in (1, 30)]})
    res = call(server, "cloudwatch_alarm_history", {"alarm_name": "payments-5xx"})
    assert not res.is_error, res.content
    assert [i["summary"] for i in res.structured_content["items"]] == [
        "Alarm updated from OK to ALARM (1)", "Alarm updated from OK to ALARM (30)"]


def test_throttling_is_a_retryable_tool_error(stubbed: tuple[MCPServer, Stubber, Stubber]) -> None:
    server, _, cw = stubbed
    cw.add_client_error("describe_alarms", "Throttling", "Rate exceeded", 400)
    res = call(server, "cloudwatch_alarms", {})
    assert res.is_error and "Throttling" in res.content[0].text and "retryable" in res.content[0].text


def rows(n: int) -> list[list[dict[str, str]]]:
    return [[{"field": "@message", "value": f"line {i}"}] for i in range(n)]


def test_an_insights_window_at_the_row_cap_is_split_in_halves(
        stubbed: tuple[MCPServer, Stubber, Stubber]) -> None:
    server, logs, _ = stubbed
    for qid, status, found in (("q1", "Running", []), ("q1", "Complete", rows(ROW_CAP)),
                               ("q2", "Complete", rows(4000)), ("q3", "Complete", rows(3000))):
        if status == "Running" or qid != "q1":
            logs.add_response("start_query", {"queryId": qid})
        logs.add_response("get_query_results", {"status": status, "results": found})
    res = call(server, "cloudwatch_insights_query", {"log_groups": ["/app/pay"], "query": "fields @message"})
    data = res.structured_content
    assert data["status"] == "Complete" and data["queries"] == 3
    assert data["rows"] + data["omitted"] == 7000  # the halves' rows, not the capped window's
    logs.assert_no_pending_responses()


def test_an_insights_query_still_running_returns_its_id_to_poll(
        stubbed: tuple[MCPServer, Stubber, Stubber]) -> None:
    server, logs, _ = stubbed
    logs.add_response("start_query", {"queryId": "q9"})
    for _ in range(3):
        logs.add_response("get_query_results", {"status": "Running", "results": []})
    args = {"log_groups": ["/a"], "query": "fields @message", "wait_s": 2}
    res = call(server, "cloudwatch_insights_query", args)
    assert res.structured_content["status"] == "Running" and res.structured_content["query_id"] == "q9"
