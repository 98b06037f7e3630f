"""One CloudWatch log group that cannot be read never stops the poller: a real moto server, boto3 clients.

The error is AWS's own shape as moto answers it (``ResourceNotFoundException`` for a
group deleted between DescribeLogGroups and FilterLogEvents).  Moto does not simulate
throttling (no ``ThrottlingException`` from its logs backend), so throttling is covered
by the stubbed ``ClientError`` in ``tests/unit/test_cloudwatch.py``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from producers.base import Poller, PollerConfig
from producers.cursors import MemoryCursorStore
from producers.mapping import ServiceMapper
from producers.metrics import RecordingMetrics
from producers.ratelimit import FakeClock
from producers.sources.cloudwatch import (
    CloudWatchClients,
    CloudWatchSettings,
    InsightsQuery,
    build_streams,
    make_clients,
    source_context,
)
from schemas.models import Source
from tests.fakes import RecordingPublisher, decoded_dead_letters, decoded_events
from tests.fakes.moto_server import CREDENTIALS, MotoServer, running_moto

REGION = "eu-west-1"
NOW = datetime.now(UTC).replace(microsecond=0)
T0 = NOW - timedelta(minutes=30)


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with running_moto() as server:
        yield server


@pytest.fixture
def clients(moto: MotoServer) -> CloudWatchClients:
    settings = CloudWatchSettings(region=REGION, endpoint_url=moto.url)
    return make_clients(settings, boto3.Session(region_name=REGION, aws_access_key_id=CREDENTIALS.key_id,
                                                aws_secret_access_key=CREDENTIALS.secret))


def _seed(clients: CloudWatchClients, group: str, *messages: str) -> None:
    clients.logs.create_log_group(logGroupName=group)
    clients.logs.create_log_stream(logGroupName=group, logStreamName="main")
    start = int(T0.timestamp() * 1000)
    clients.logs.put_log_events(logGroupName=group, logStreamName="main", logEvents=[
        {"timestamp": start + i * 1000, "message": m} for i, m in enumerate(messages)])


def test_a_log_group_deleted_between_describe_and_read_is_skipped_and_the_round_goes_on(
    clients: CloudWatchClients,
) -> None:
    prefix = f"/seismo/{uuid.uuid4().hex[:8]}/"
    _seed(clients, f"{prefix}a-checkout", "GET /cart 200")
    _seed(clients, f"{prefix}b-gone", "ERROR about to be deleted")
    _seed(clients, f"{prefix}c-payments", "GET /charge 200")
    settings = CloudWatchSettings(region=REGION, log_group_prefixes=(prefix,), alarms=False, delay_s=60)
    clock, metrics = FakeClock(NOW), RecordingMetrics()
    streams = build_streams(settings, clients, source_context(settings, clock, metrics), ServiceMapper())
    publisher, cursors = RecordingPublisher(), MemoryCursorStore()
    config = PollerConfig(Source.CLOUDWATCH, "raw", "dlq")
    poller = Poller(config, streams, publisher, cursors, clock, metrics)

    async def run() -> None:
        await poller.poll_once(poller.streams[0])  # lists the three groups, reads a-checkout
        clients.logs.delete_log_group(logGroupName=f"{prefix}b-gone")
        await poller.cycle()  # b-gone answers ResourceNotFoundException; c-payments is still read

    asyncio.run(run())
    assert [e.message for e in decoded_events(publisher)] == ["GET /cart 200", "GET /charge 200"]
    assert decoded_dead_letters(publisher) == []
    assert metrics.value("seismo_poller_object_errors_total", reason="gone") == 1
    final = cursors.load(f"cloudwatch/logs:{prefix}")
    assert final is not None and final["next"] is None
    assert set(final["groups"]) == {f"{prefix}a-checkout", f"{prefix}c-payments"}


def test_an_insights_query_over_a_missing_log_group_is_retried_then_its_window_is_dead_lettered(
    clients: CloudWatchClients,
) -> None:
    prefix = f"/seismo/{uuid.uuid4().hex[:8]}/"
    query = InsightsQuery(name="errors", log_groups=(f"{prefix}never-created",))
    settings = CloudWatchSettings(region=REGION, insights=(query,), alarms=False, delay_s=60)
    clock, metrics = FakeClock(NOW), RecordingMetrics()
    ctx = replace(source_context(settings, clock, metrics), object_attempts=2)
    streams = build_streams(settings, clients, ctx, ServiceMapper())
    publisher, cursors = RecordingPublisher(), MemoryCursorStore()
    config = PollerConfig(Source.CLOUDWATCH, "raw", "dlq")
    poller = Poller(config, streams, publisher, cursors, clock, metrics)

    async def run() -> None:
        await poller.cycle()
        assert cursors.load("cloudwatch/insights:errors") is None, "the failed window was skipped"
        await poller.cycle()

    asyncio.run(run())
    [letter] = decoded_dead_letters(publisher)
    assert letter.error_type == "object_parked" and "ResourceNotFoundException" in letter.reason
    assert metrics.value("seismo_poller_parked_total", stream="insights:errors") == 1
    assert cursors.load("cloudwatch/insights:errors") is not None
