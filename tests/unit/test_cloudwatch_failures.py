"""Per-object failures of the CloudWatch log groups stream, with AWS's error shapes on a stub client.

moto answers every log group alike for one caller (its IAM check does not look at resources), so
a group denied while its neighbours are readable is stubbed here with the ``ClientError`` botocore
raises for it: ``{"Error": {"Code": "AccessDeniedException", "Message": …}}`` with HTTP 400.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from producers.base import Poller, PollerConfig
from producers.cursors import MemoryCursorStore
from producers.mapping import ServiceMapper
from producers.metrics import RecordingMetrics
from producers.ratelimit import FakeClock
from producers.sources.cloudwatch import CloudWatchSettings, source_context
from producers.sources.cloudwatch_calls import AwsCaller
from producers.sources.cloudwatch_logs import LogGroupsStream
from schemas.models import Source
from tests.fakes import RecordingPublisher, decoded_dead_letters, decoded_events

AT = datetime(2024, 5, 14, 8, 0, tzinfo=UTC)
AT_MS = int(AT.timestamp() * 1000)


class StubLogs:
    """DescribeLogGroups and FilterLogEvents for two groups; ``denied`` answers AccessDeniedException."""

    def __init__(self, denied: str) -> None:
        self.denied = denied
        self.filtered: list[str] = []

    def describe_log_groups(self, **_: Any) -> dict[str, Any]:
        return {"logGroups": [{"logGroupName": "/ecs/checkout"}, {"logGroupName": "/ecs/payments"}]}

    def filter_log_events(self, **kwargs: Any) -> dict[str, Any]:
        group = kwargs["logGroupName"]
        self.filtered.append(group)
        if group == self.denied:
            message = ("User: arn:aws:iam::123456789012:user/seismo is not authorized to perform: "
                       "logs:FilterLogEvents on resource: "
                       f"arn:aws:logs:eu-west-1:123456789012:log-group:{group}")
            error = {"Error": {"Code": "AccessDeniedException", "Message": message},
                     "ResponseMetadata": {"HTTPStatusCode": 400}}
            raise ClientError(error, "FilterLogEvents")  # type: ignore[arg-type]
        return {"events": [{"eventId": "1", "timestamp": AT_MS - 300_000, "message": f"GET {group} 200",
                            "logStreamName": "main"}]}


def test_a_log_group_the_caller_may_not_read_is_parked_and_the_other_groups_are_read() -> None:
    logs = StubLogs(denied="/ecs/checkout")
    clock, metrics = FakeClock(AT), RecordingMetrics()
    ctx = source_context(CloudWatchSettings(), clock, metrics)
    stream = LogGroupsStream(logs, AwsCaller(ctx), ServiceMapper(), prefix="/ecs/",  # type: ignore[arg-type]
                             region="eu-west-1")
    publisher, cursors = RecordingPublisher(), MemoryCursorStore()
    config = PollerConfig(Source.CLOUDWATCH, "raw", "dlq")
    poller = Poller(config, [stream], publisher, cursors, clock, metrics)

    async def run() -> None:
        await poller.cycle()
        clock.advance(120)  # a new window for every group
        await poller.cycle()  # /ecs/checkout is parked: not asked again

    asyncio.run(run())
    assert logs.filtered == ["/ecs/checkout", "/ecs/payments", "/ecs/payments"]
    [letter] = decoded_dead_letters(publisher)
    assert letter.error_type == "object_parked" and "not authorized to perform" in letter.reason
    assert [e.message for e in decoded_events(publisher)] == ["GET /ecs/payments 200"]
    assert metrics.value("seismo_poller_object_errors_total", reason="denied") == 1
