"""CloudWatch metrics via GetMetricData: configured series and statistics → ``metric`` events.

Each fetch reads the closed periods since the cursor: the window is
``[next_start, end)`` with ``end`` = now - ``delay_s`` rounded down to the period,
so a datapoint is read once its period closed and CloudWatch had ``delay_s`` to
aggregate it (GetMetricData's start is inclusive and its end exclusive).  All
pages (``NextToken``) of a window are read before the cursor moves.  Cursor:
``{"next_start": epoch seconds}``.

The service of a series is the spec's ``service`` when set, else the first
mapped dimension (:meth:`producers.mapping.ServiceMapper.for_cloudwatch_dimensions`).
The Event's metric name is ``MetricName.Stat`` (e.g. ``CPUUtilization.p99``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from producers.base import Batch
from producers.cursors import Cursor
from producers.mapping import ServiceMapper
from producers.sources.cloudwatch_calls import AwsCaller, stable_id, to_ms
from schemas.models import Entity, Event, EventKind, Metric, Severity, Source

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient


class MetricSpec(BaseModel):
    """One series to read: namespace, metric name, exact dimensions, and the statistics wanted."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str
    metric: str
    dimensions: dict[str, str] = Field(default_factory=dict)
    stats: tuple[str, ...] = ("Average",)
    unit: str | None = None
    service: str | None = None


def metric_queries(specs: Sequence[MetricSpec]) -> dict[str, tuple[MetricSpec, str]]:
    """GetMetricData query ids (``m<spec>_<stat>``) → (spec, statistic)."""
    return {f"m{i}_{j}": (spec, stat) for i, spec in enumerate(specs) for j, stat in enumerate(spec.stats)}


def metric_event(spec: MetricSpec, stat: str, ts: datetime, value: float, *,
                 period_s: int, mapper: ServiceMapper, region: str) -> Event:
    """One datapoint as an Event; the id depends only on the series, statistic and timestamp."""
    dims = dict(sorted(spec.dimensions.items()))
    service = mapper.canonical(spec.service) if spec.service else mapper.for_cloudwatch_dimensions(
        dims, fallback=spec.namespace.rsplit("/", 1)[-1])
    attributes = {"namespace": spec.namespace, "stat": stat, "period_s": str(period_s),
                  **{f"dimension.{k}": v for k, v in dims.items()}}
    return Event(
        id=stable_id("cwm", spec.namespace, spec.metric, sorted(dims.items()), stat, to_ms(ts)),
        source=Source.CLOUDWATCH, kind=EventKind.METRIC, timestamp=ts, service=service,
        entity=Entity(region=region), severity=Severity.INFO,
        message=f"{spec.namespace} {spec.metric} {stat}",
        metric=Metric(name=f"{spec.metric}.{stat}", value=float(value), unit=spec.unit),
        attributes=attributes,
    )


class MetricsStream:
    """Reads ``specs`` every closed ``period_s``; one fetch reads a whole window (all pages)."""

    def __init__(self, client: CloudWatchClient, caller: AwsCaller, mapper: ServiceMapper, *,
                 specs: Sequence[MetricSpec], region: str, name: str = "metrics", period_s: int = 60,
                 delay_s: float = 120.0, lookback_s: float = 3600.0) -> None:
        self.client, self.caller, self.mapper = client, caller, mapper
        self.specs, self.region, self.stream_name = list(specs), region, name
        self.period_s, self.delay_s, self.lookback_s = period_s, delay_s, lookback_s

    @property
    def name(self) -> str:
        return f"metrics:{self.stream_name}"

    async def fetch(self, cursor: Cursor | None) -> Batch:
        """Every datapoint of the closed periods since the cursor, in one batch."""
        now = int(self.caller.ctx.clock.now().timestamp())
        end = (now - int(self.delay_s)) // self.period_s * self.period_s
        first = (now - int(self.lookback_s)) // self.period_s * self.period_s
        start = int(cursor["next_start"]) if cursor else first
        if end <= start or not self.specs:
            return Batch()
        queries = metric_queries(self.specs)
        body: list[Any] = [{
            "Id": qid, "ReturnData": True,
            "MetricStat": {"Period": self.period_s, "Stat": stat, "Metric": {
                "Namespace": spec.namespace, "MetricName": spec.metric,
                "Dimensions": [{"Name": k, "Value": v} for k, v in spec.dimensions.items()]}},
        } for qid, (spec, stat) in queries.items()]
        events: list[Event] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "MetricDataQueries": body, "StartTime": datetime.fromtimestamp(start, UTC),
                "EndTime": datetime.fromtimestamp(end, UTC), "ScanBy": "TimestampAscending"}
            if token:
                kwargs["NextToken"] = token
            page = await self.caller(self.name, partial(self.client.get_metric_data, **kwargs))
            for result in page.get("MetricDataResults", []):
                spec, stat = queries[result["Id"]]
                for ts, value in zip(result.get("Timestamps", []), result.get("Values", []), strict=False):
                    events.append(metric_event(spec, stat, ts.astimezone(UTC), value, period_s=self.period_s,
                                               mapper=self.mapper, region=self.region))
            token = page.get("NextToken")
            if not token:
                break
        events.sort(key=lambda e: (e.timestamp, e.id))
        return Batch(events, (), {"next_start": end})
