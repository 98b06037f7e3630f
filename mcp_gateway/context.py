"""What every tool, resource and prompt reads: the materialized tables and the gateway's settings.

Built by :func:`mcp_gateway.app.run_gateway` (or by a test, with pre-filled tables).  The
``ready`` check is the one place that decides whether the gateway may answer at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from mcp_gateway.anomalies import AnomalyWindow
from mcp_gateway.errors import NotProduced, NotReady
from mcp_gateway.events_log import EventLog
from mcp_gateway.feedback import FeedbackLog
from mcp_gateway.links import LinkBases
from mcp_gateway.recent import DISABLED, RecentEvents
from mcp_gateway.store import IncidentStore
from stream_processors.embed import Embedder

NOT_READY = (
    "the gateway has not caught up with Kafka yet (the incident table is still loading or the "
    "broker is unreachable), so it cannot tell what is open: retry in a few seconds; "
    "/healthz says when it is ready"
)
RETRY_AFTER_S = 5.0


class Reader(Protocol):
    """A topic reader of the gateway (:class:`~mcp_gateway.follower.TopicFollower`)."""

    topic: str
    failure: str | None
DEFAULT_TOKEN_BUDGET = 4000


@dataclass
class GatewayContext:
    store: IncidentStore
    recent: RecentEvents | None = None
    """The searchable window of recent events; None when semantic search is off."""
    search_disabled: str = DISABLED
    """Why search is unavailable when ``recent`` is None (the tool's error message)."""
    events: EventLog | None = None
    """Recent enriched events (timeline, explain, what_changed); None when not followed."""
    anomalies: AnomalyWindow | None = None
    feedback: FeedbackLog | None = None
    embedder: Embedder | None = None
    """Embeds incident titles and templates for similar_incidents; None disables it."""
    links: LinkBases = field(default_factory=LinkBases)
    token_budget: int = DEFAULT_TOKEN_BUDGET
    noop_tool: bool = False
    readers: Sequence[Reader] = ()
    """The topic readers filling the tables; one that stopped makes the gateway unhealthy."""

    def ready(self) -> None:
        """Raise :class:`NotReady` until the incident store has caught up with Kafka, or when a
        reader stopped (its table no longer follows the topic)."""
        if failed := self.failed_readers():
            raise NotReady(
                "the gateway stopped reading " + "; ".join(f"{t} ({why})" for t, why in failed.items())
                + ", so what it holds may be stale: it reports unhealthy on /healthz; restart it",
                RETRY_AFTER_S,
            )
        if not self.store.caught_up.is_set():
            raise NotReady(NOT_READY, RETRY_AFTER_S)

    def failed_readers(self) -> dict[str, str]:
        """topic -> why its reader stopped, for every reader that did."""
        return {r.topic: r.failure for r in self.readers if r.failure is not None}

    def event_log(self) -> EventLog:
        if self.events is None:
            raise NotProduced(
                "this gateway does not follow seismo.events.enriched, so it has no recent events to "
                "show; run the gateway with Kafka reachable (`seismo gateway`)"
            )
        if not self.events.caught_up.is_set():
            raise NotReady(
                "the gateway is still reading recent events from Kafka: retry in a few seconds", RETRY_AFTER_S
            )
        return self.events

    def anomaly_window(self) -> AnomalyWindow:
        if self.anomalies is None:
            raise NotProduced(
                "this gateway does not follow seismo.anomalies; anomaly signals are unavailable"
            )
        if not self.anomalies.caught_up.is_set():
            raise NotReady(
                "the gateway is still reading seismo.anomalies: retry in a few seconds", RETRY_AFTER_S
            )
        if not self.anomalies.ever_published:
            raise NotProduced(
                "no anomaly was ever published on seismo.anomalies: the worker's scorer has not run "
                "(start `seismo worker`), so service health is unknown, not healthy"
            )
        return self.anomalies

    def health(self) -> tuple[bool, dict[str, str]]:
        """(healthy, the failed readers), from one look at the readers."""
        failed = self.failed_readers()
        return self.store.caught_up.is_set() and not failed, failed

    def healthy(self) -> bool:
        return self.health()[0]
