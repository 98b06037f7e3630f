"""The CloudWatch source against a real moto server, through the production boto3 clients."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from producers.base import Poller, PollerConfig
from producers.cursors import CursorStore, KafkaCursorStore, MemoryCursorStore
from producers.mapping import ServiceMapper
from producers.metrics import RecordingMetrics
from producers.publisher import KafkaPublisher
from producers.ratelimit import FakeClock
from producers.sources.cloudwatch import (
    CloudWatchClients,
    CloudWatchSettings,
    InsightsQuery,
    build_streams,
    make_clients,
    make_session,
    source_context,
)
from producers.sources.cloudwatch_alarms import AlarmsStream
from producers.sources.cloudwatch_calls import AwsCaller, stable_id
from producers.sources.cloudwatch_insights import InsightsStream
from producers.sources.cloudwatch_logs import LogGroupsStream
from producers.sources.cloudwatch_metrics import MetricSpec, MetricsStream
from schemas.codec import codec_for
from schemas.models import Entity, Event, EventKind, Severity, Source
from tests.fakes.moto_server import CREDENTIALS, MotoServer, running_moto
from tests.kafka_utils import read_topic

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


class ListPublisher:
    """Records what was published; flush succeeds (the broker acknowledged)."""

    def __init__(self) -> None:
        self.records: list[tuple[str, bytes | None, bytes]] = []

    def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        self.records.append((topic, key, value))

    def flush(self, timeout: float = 30.0) -> None:
        return None

    def ids(self, topic: str = "raw") -> list[str]:
        codec = codec_for("event")
        return [str(codec.decode(v)["id"]) for t, _, v in self.records if t == topic]


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def _seed_logs(
    clients: CloudWatchClients, group: str, streams: dict[str, list[tuple[datetime, str]]]
) -> None:
    clients.logs.create_log_group(logGroupName=group)
    for name, lines in streams.items():
        clients.logs.create_log_stream(logGroupName=group, logStreamName=name)
        clients.logs.put_log_events(logGroupName=group, logStreamName=name,
                                    logEvents=[{"timestamp": _ms(ts), "message": m} for ts, m in lines])


def _all_log_ids(clients: CloudWatchClients, group: str) -> list[str]:
    raw = clients.logs.filter_log_events(logGroupName=group, interleaved=True)["events"]
    return [stable_id("cwl", group, e["eventId"]) for e in raw]


def _poller(clients: CloudWatchClients, prefix: str, publisher: ListPublisher | KafkaPublisher,
            cursors: CursorStore, clock: FakeClock, topics: tuple[str, str] = ("raw", "dlq")) -> Poller:
    settings = CloudWatchSettings(region=REGION, log_group_prefixes=(prefix,), page_size=3, alarms=False,
                                  delay_s=60)
    ctx = source_context(settings, clock, RecordingMetrics())
    streams = build_streams(settings, clients, ctx, ServiceMapper())
    config = PollerConfig(Source.CLOUDWATCH, topics[0], topics[1], max_pages_per_cycle=100)
    return Poller(config, streams, publisher, cursors, clock, RecordingMetrics())


def _seed_two_groups(clients: CloudWatchClients, prefix: str) -> list[str]:
    lines = [(T0 + timedelta(seconds=i), f"GET /orders/{i} 200") for i in range(6)]
    _seed_logs(clients, f"{prefix}payments", {"a": lines[::2], "b": [(T0, "same ms as a/0"), *lines[1::2]]})
    ticks = [(T0 + timedelta(seconds=i), f"tick {i}") for i in range(4)]
    _seed_logs(clients, f"{prefix}checkout", {"main": ticks})
    return _all_log_ids(clients, f"{prefix}checkout") + _all_log_ids(clients, f"{prefix}payments")


def test_a_seeded_log_record_becomes_exactly_this_event(clients: CloudWatchClients) -> None:
    group = f"/seismo/{uuid.uuid4().hex[:8]}/payments-api"
    _seed_logs(clients, group, {"pod-1": [(T0, "ERROR charge failed for order 42")]})
    event_id = clients.logs.filter_log_events(logGroupName=group)["events"][0]["eventId"]
    ctx = source_context(CloudWatchSettings(), FakeClock(NOW), RecordingMetrics())
    stream = LogGroupsStream(clients.logs, AwsCaller(ctx), ServiceMapper(), prefix=group, region=REGION)
    batch = asyncio.run(stream.fetch(None))
    assert list(batch.events) == [Event(
        id=stable_id("cwl", group, event_id), source=Source.CLOUDWATCH, kind=EventKind.LOG, timestamp=T0,
        service="payments-api", entity=Entity(log_group=group, region=REGION), severity=Severity.ERROR,
        message="ERROR charge failed for order 42", attributes={"log_stream": "pod-1", "event_id": event_id},
    )]


def test_pages_of_every_group_are_read_through_next_tokens_once_each(clients: CloudWatchClients) -> None:
    prefix = f"/seismo/{uuid.uuid4().hex[:8]}/"
    expected = _seed_two_groups(clients, prefix)
    publisher, cursors, clock = ListPublisher(), MemoryCursorStore(), FakeClock(NOW)
    asyncio.run(_poller(clients, prefix, publisher, cursors, clock).cycle())
    assert publisher.ids() == expected
    assert any(c["groups"][g]["token"] for _, c in cursors.history for g in c["groups"])
    final = cursors.load(f"cloudwatch/logs:{prefix}")
    assert final is not None
    assert final["next"] is None
    after_window = _ms(NOW) - 60_000 + 1
    assert {g: (v["ts"], v["token"]) for g, v in final["groups"].items()} == {
        f"{prefix}checkout": (after_window, None), f"{prefix}payments": (after_window, None)}


def test_a_poller_stopped_mid_stream_resumes_without_losing_or_repeating_events(
    clients: CloudWatchClients,
) -> None:
    prefix = f"/seismo/{uuid.uuid4().hex[:8]}/"
    expected = _seed_two_groups(clients, prefix)
    publisher, cursors, clock = ListPublisher(), MemoryCursorStore(), FakeClock(NOW)
    first = _poller(clients, prefix, publisher, cursors, clock)
    for _ in range(3):
        asyncio.run(first.poll_once(first.streams[0]))
    stored = cursors.load(f"cloudwatch/logs:{prefix}")
    assert stored is not None
    assert stored["groups"][f"{prefix}payments"]["token"]
    asyncio.run(_poller(clients, prefix, publisher, cursors, clock).cycle())
    assert publisher.ids() == expected
    later = NOW + timedelta(minutes=2)
    clients.logs.put_log_events(logGroupName=f"{prefix}checkout", logStreamName="main",
                                logEvents=[{"timestamp": _ms(later) - 61_000, "message": "new"}])
    asyncio.run(_poller(clients, prefix, publisher, cursors, FakeClock(later)).cycle())
    assert publisher.ids() == [*expected, _all_log_ids(clients, f"{prefix}checkout")[-1]]


def test_insights_query_results_become_log_events(clients: CloudWatchClients) -> None:
    group = f"/seismo/{uuid.uuid4().hex[:8]}/search"
    _seed_logs(clients, group, {"s": [(T0 + timedelta(seconds=i), f"WARN slow query {i}") for i in range(3)]})
    ctx = source_context(CloudWatchSettings(), FakeClock(NOW), RecordingMetrics())
    stream = InsightsStream(clients.logs, AwsCaller(ctx), ServiceMapper(), name="slow", log_groups=[group],
                            region=REGION)
    batch = asyncio.run(stream.fetch(None))
    assert [(e.service, e.severity, e.message, e.timestamp) for e in batch.events] == [
        ("search", Severity.WARNING, f"WARN slow query {i}", T0 + timedelta(seconds=i)) for i in range(3)]
    assert batch.cursor == {"next_start": int(NOW.timestamp()) - 120 + 1}
    assert asyncio.run(stream.fetch(batch.cursor)).events == ()
    settings = CloudWatchSettings(insights=(InsightsQuery(name="slow", log_groups=(group,)),), alarms=False)
    assert [s.name for s in build_streams(settings, clients, ctx, ServiceMapper())] == ["insights:slow"]


def test_metric_datapoints_become_metric_events_per_statistic(clients: CloudWatchClients) -> None:
    namespace = f"Seismo/{uuid.uuid4().hex[:8]}"
    minute = (NOW - timedelta(minutes=10)).replace(second=0)
    clients.cloudwatch.put_metric_data(Namespace=namespace, MetricData=[
        {"MetricName": "Latency", "Dimensions": [{"Name": "Service", "Value": "checkout"}],
         "Timestamp": minute + timedelta(seconds=s), "Value": v, "Unit": "Milliseconds"}
        for s, v in ((5, 100.0), (35, 300.0))])
    spec = MetricSpec(namespace=namespace, metric="Latency", dimensions={"Service": "checkout"},
                      stats=("Average", "Maximum"), unit="ms")
    ctx = source_context(CloudWatchSettings(), FakeClock(NOW), RecordingMetrics())
    stream = MetricsStream(clients.cloudwatch, AwsCaller(ctx), ServiceMapper(), specs=[spec], region=REGION)
    batch = asyncio.run(stream.fetch(None))
    got = {(e.service, e.timestamp, e.metric.name, e.metric.value) for e in batch.events if e.metric}
    assert got == {("checkout", minute, "Latency.Average", 200.0),
                   ("checkout", minute, "Latency.Maximum", 300.0)}
    assert all(e.attributes["dimension.Service"] == "checkout" for e in batch.events)
    assert asyncio.run(stream.fetch(batch.cursor)).events == ()


def test_alarm_state_changes_become_alerts_once_each(clients: CloudWatchClients) -> None:
    name = f"{uuid.uuid4().hex[:8]}-p95-latency"
    clients.cloudwatch.put_metric_alarm(
        AlarmName=name, MetricName="Latency", Namespace="Seismo", Statistic="Average", Period=60,
        EvaluationPeriods=3, Threshold=800.0, ComparisonOperator="GreaterThanThreshold",
        Dimensions=[{"Name": "Service", "Value": "payments"}])
    clients.cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="p95 above 800 ms")
    clock = FakeClock(NOW + timedelta(minutes=5))
    ctx = source_context(CloudWatchSettings(), clock, RecordingMetrics())
    stream = AlarmsStream(clients.cloudwatch, AwsCaller(ctx), ServiceMapper(), region=REGION, prefix=name,
                          history=False)  # moto has no DescribeAlarmHistory
    first = asyncio.run(stream.fetch(None))
    assert [(e.kind, e.severity, e.service, e.attributes["state"], e.message) for e in first.events] == [
        (EventKind.ALERT, Severity.ERROR, "payments", "ALARM", f"ALARM: {name}: p95 above 800 ms")]
    assert asyncio.run(stream.fetch(first.cursor)).events == []
    clients.cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="recovered")
    cleared = asyncio.run(stream.fetch(first.cursor))
    assert [(e.severity, e.attributes["state"]) for e in cleared.events] == [(Severity.INFO, "OK")]


def test_an_assumed_role_signs_the_calls(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    settings = CloudWatchSettings(region=REGION, endpoint_url=moto.url, external_id="seismo",
                                  role_arn="arn:aws:iam::123456789012:role/seismo-reader")
    session = make_session(settings)
    credentials = session.get_credentials()
    assert credentials is not None
    assert (credentials.get_frozen_credentials().access_key or "").startswith("ASIA")
    assert "logGroups" in make_clients(settings, session).logs.describe_log_groups(limit=1)


@pytest.mark.kafka
def test_events_reach_kafka_and_a_restart_from_kafka_cursors_repeats_nothing(
    clients: CloudWatchClients, kafka_bootstrap: str
) -> None:
    run = uuid.uuid4().hex[:10]
    raw, dlq, cursor_topic = f"t-{run}.seismo.events.raw", f"t-{run}.seismo.dlq", f"t-{run}.seismo.cursors"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for future in admin.create_topics([NewTopic(raw, 3, 1), NewTopic(dlq, 1, 1), NewTopic(
            cursor_topic, 1, 1, config={"cleanup.policy": "compact"})]).values():
        future.result(30)
    prefix = f"/seismo/{run}/"
    expected = _seed_two_groups(clients, prefix)
    publisher, clock = KafkaPublisher(kafka_bootstrap), FakeClock(NOW)
    cursors = KafkaCursorStore.restore(kafka_bootstrap, cursor_topic, publisher)
    first = _poller(clients, prefix, publisher, cursors, clock, (raw, dlq))
    for _ in range(3):
        asyncio.run(first.poll_once(first.streams[0]))
    restarted = KafkaCursorStore.restore(kafka_bootstrap, cursor_topic, publisher)
    assert restarted.load(f"cloudwatch/logs:{prefix}") is not None
    asyncio.run(_poller(clients, prefix, publisher, restarted, clock, (raw, dlq)).cycle())
    codec = codec_for("event")
    published = [(key, codec.decode(value)) for key, value in read_topic(raw) if value is not None]
    assert sorted(str(v["id"]) for _, v in published) == sorted(expected)
    assert {key for key, _ in published} == {b"payments", b"checkout"}
