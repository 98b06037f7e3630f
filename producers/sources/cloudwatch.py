"""The CloudWatch source: settings, boto3 clients, and the poller over its streams.

Streams (each with its own cursor in ``seismo.cursors``):

* ``logs:<prefix>`` — log groups by name prefix via FilterLogEvents
  (:mod:`producers.sources.cloudwatch_logs`);
* ``insights:<name>`` — Logs Insights queries, windows split on the 10,000-row cap
  (:mod:`producers.sources.cloudwatch_insights`);
* ``metrics:<name>`` — GetMetricData series and statistics
  (:mod:`producers.sources.cloudwatch_metrics`);
* ``alarms:<prefix>`` — DescribeAlarms + DescribeAlarmHistory as alerts
  (:mod:`producers.sources.cloudwatch_alarms`).

Credentials follow boto3's usual chain, optionally from a named ``profile``;
with ``role_arn`` the source assumes that role and refreshes the temporary
credentials before they expire.  ``endpoint_url`` points every client elsewhere
(moto, LocalStack).  botocore's own retries are off: throttling and 5xx go
through the source's token bucket and backoff (:mod:`producers.sources.cloudwatch_calls`).
Building clients performs I/O only when a role must be assumed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.credentials import RefreshableCredentials
from botocore.session import get_session
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from producers.base import Poller, PollerConfig, SourceContext, Stream
from producers.config import ConfigError, PollSettings
from producers.cursors import CursorStore
from producers.mapping import ServiceMapper
from producers.metrics import Metrics
from producers.publisher import EventPublisher
from producers.ratelimit import Backoff, Clock, TokenBucket
from producers.sources.cloudwatch_alarms import AlarmsStream
from producers.sources.cloudwatch_calls import AwsCaller
from producers.sources.cloudwatch_insights import DEFAULT_QUERY, InsightsStream
from producers.sources.cloudwatch_logs import LogGroupsStream
from producers.sources.cloudwatch_metrics import MetricSpec, MetricsStream
from schemas.models import Source

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_logs import CloudWatchLogsClient


class InsightsQuery(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    log_groups: tuple[str, ...]
    query: str = DEFAULT_QUERY


class CloudWatchSettings(BaseModel):
    """Everything the CloudWatch source reads; the ``cloudwatch`` section of the poller config."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    region: str = "us-east-1"
    profile: str | None = None
    role_arn: str | None = None
    external_id: str | None = None
    role_session_name: str = "seismo-poller"
    endpoint_url: str | None = None
    log_group_prefixes: tuple[str, ...] = ()
    insights: tuple[InsightsQuery, ...] = ()
    metrics: tuple[MetricSpec, ...] = ()
    metric_period_s: int = Field(default=60, ge=1)
    alarms: bool = True
    alarm_prefix: str = ""
    alarm_history: bool = True
    alarm_services: dict[str, str] = Field(default_factory=dict)
    delay_s: float = Field(default=60.0, ge=0)
    lookback_s: float = Field(default=3600.0, gt=0)
    page_size: int = Field(default=1000, ge=1, le=10_000)
    requests_per_second: float = Field(default=5.0, gt=0)
    burst: int = Field(default=5, ge=1)


@dataclass(frozen=True)
class CloudWatchClients:
    logs: CloudWatchLogsClient
    cloudwatch: CloudWatchClient


def client_config(timeout_s: float | None = None) -> Config:
    """botocore settings of every Seismo AWS client: no retries of its own, bounded timeouts."""
    return Config(retries={"total_max_attempts": 1}, connect_timeout=timeout_s or 10,
                  read_timeout=timeout_s or 30)


def make_session(settings: CloudWatchSettings) -> boto3.Session:
    """A boto3 session for ``settings``; assumes ``role_arn`` (an STS call) when one is set."""
    base = boto3.Session(profile_name=settings.profile, region_name=settings.region)
    if not settings.role_arn:
        return base
    sts = base.client("sts", endpoint_url=settings.endpoint_url)
    role_arn, name, external_id = settings.role_arn, settings.role_session_name, settings.external_id

    def assume() -> dict[str, str]:
        if external_id:
            c = sts.assume_role(RoleArn=role_arn, RoleSessionName=name, ExternalId=external_id)["Credentials"]
        else:
            c = sts.assume_role(RoleArn=role_arn, RoleSessionName=name)["Credentials"]
        return {"access_key": c["AccessKeyId"], "secret_key": c["SecretAccessKey"],
                "token": c["SessionToken"], "expiry_time": c["Expiration"].isoformat()}

    refreshable = RefreshableCredentials.create_from_metadata(
        metadata=assume(), refresh_using=assume, method="sts-assume-role")
    botocore_session = get_session()
    # botocore has no public setter for ready-made refreshable credentials; this is the documented recipe.
    botocore_session._credentials = refreshable  # type: ignore[attr-defined]
    return boto3.Session(botocore_session=botocore_session, region_name=settings.region)


def make_clients(settings: CloudWatchSettings, session: boto3.Session | None = None,
                 timeout_s: float | None = None) -> CloudWatchClients:
    """Logs and CloudWatch clients with botocore retries off (the poller retries) and bounded timeouts.

    ``timeout_s`` replaces both the connect (10 s) and the read (30 s) timeout."""
    session = session or make_session(settings)
    config = client_config(timeout_s)
    kwargs: dict[str, Any] = {"region_name": settings.region, "config": config,
                              "endpoint_url": settings.endpoint_url}
    return CloudWatchClients(session.client("logs", **kwargs), session.client("cloudwatch", **kwargs))


def source_context(settings: CloudWatchSettings, clock: Clock, metrics: Metrics,
                   backoff: Backoff | None = None) -> SourceContext:
    limiter = TokenBucket(settings.requests_per_second, settings.burst, clock)
    return SourceContext(Source.CLOUDWATCH, clock, limiter, metrics, backoff or Backoff())


def build_streams(settings: CloudWatchSettings, clients: CloudWatchClients, ctx: SourceContext,
                  mapper: ServiceMapper) -> list[Stream]:
    """One stream per configured log-group prefix and Insights query, one for metrics, one for alarms."""
    caller = AwsCaller(ctx)
    common: dict[str, Any] = {"region": settings.region, "lookback_s": settings.lookback_s}
    streams: list[Stream] = [
        LogGroupsStream(clients.logs, caller, mapper, prefix=prefix, delay_s=settings.delay_s,
                        page_size=settings.page_size, **common)
        for prefix in settings.log_group_prefixes
    ]
    streams += [InsightsStream(clients.logs, caller, mapper, name=q.name, log_groups=list(q.log_groups),
                               query=q.query, delay_s=settings.delay_s, **common) for q in settings.insights]
    if settings.metrics:
        streams.append(MetricsStream(clients.cloudwatch, caller, mapper, specs=settings.metrics,
                                     period_s=settings.metric_period_s, delay_s=settings.delay_s, **common))
    if settings.alarms:
        streams.append(AlarmsStream(clients.cloudwatch, caller, mapper, prefix=settings.alarm_prefix,
                                    history=settings.alarm_history, alarm_rules=settings.alarm_services,
                                    **common))
    return streams


def build_poller(settings: CloudWatchSettings, clients: CloudWatchClients, *, config: PollerConfig,
                 publisher: EventPublisher, cursors: CursorStore, clock: Clock, metrics: Metrics,
                 mapper: ServiceMapper | None = None) -> Poller:
    """The CloudWatch poller, ready for ``await poller.run(stop)``; performs no I/O itself."""
    ctx = source_context(settings, clock, metrics)
    streams = build_streams(settings, clients, ctx, mapper or ServiceMapper())
    return Poller(config, streams, publisher, cursors, clock, metrics)


def settings_from_section(section: Mapping[str, Any]) -> CloudWatchSettings:
    """The ``[cloudwatch]`` section of the poller config as :class:`CloudWatchSettings`.

    The section also holds the common poll keys (``interval_s``, ``rate_per_s`` …), which
    :mod:`producers.poll` reads; those are dropped here, any other unknown key is an error.
    Raises :class:`ConfigError` naming the offending keys (operator: fix the file).
    """
    common_only = set(PollSettings.model_fields) - set(CloudWatchSettings.model_fields)
    try:
        return CloudWatchSettings.model_validate({k: v for k, v in section.items() if k not in common_only})
    except ValidationError as exc:
        problems = "; ".join(
            f"cloudwatch.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise ConfigError(f"invalid [cloudwatch] section: {problems}") from None


@asynccontextmanager
async def open_streams(
    section: Mapping[str, Any], ctx: SourceContext, mapper: ServiceMapper, environ: Mapping[str, str]
) -> AsyncIterator[list[Stream]]:
    """The configured CloudWatch streams for ``seismo poll cloudwatch``; closes the clients on exit.

    Credentials follow boto3's own chain (``environ`` is not consulted: boto3 reads the
    process environment and the named ``profile``).  Building the clients runs in a worker
    thread because assuming ``role_arn`` is an STS call.  ``ctx`` is used as given (its rate
    limit comes from the common ``rate_per_s``/``burst`` keys) unless the section sets
    ``requests_per_second``, which then replaces the limit.  Raises :class:`ConfigError`
    for an invalid section and lets botocore errors from the STS call propagate.
    """
    settings = settings_from_section(section)
    if "requests_per_second" in section:
        ctx = replace(ctx, limiter=TokenBucket(settings.requests_per_second, settings.burst, ctx.clock))
    clients = await asyncio.to_thread(make_clients, settings)
    try:
        yield build_streams(settings, clients, ctx, mapper)
    finally:
        clients.logs.close()
        clients.cloudwatch.close()
