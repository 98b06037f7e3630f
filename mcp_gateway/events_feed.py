"""Follows ``seismo.events.enriched`` into the gateway's event log and search window.

Reads every partition from ``max(beginning, first record of the lookback, end - max_events)``
to its end and then follows it, so a restarted gateway rebuilds the same windows by re-reading
the recent part of the topic.  Nothing is committed and nothing is written to local disk.
"""

from __future__ import annotations

import logging

from confluent_kafka import KafkaError, Message
from pydantic import ValidationError

from mcp_gateway.events_log import EventLog, LoggedEvent
from mcp_gateway.follower import TopicFollower
from mcp_gateway.recent import RecentEvents
from schemas.codec import codec_for
from schemas.exceptions import SchemaError
from schemas.models import Event

log = logging.getLogger(__name__)


class RecentEventsMaterializer(TopicFollower):
    """Feeds an :class:`EventLog` (and the search window, when there is one).  Daemon thread.

    Never commits offsets.  ``events.caught_up`` (and ``recent.caught_up``) are set once every
    partition was read to the end it had at assignment.
    """

    def __init__(
        self, bootstrap: str, topic: str, events: EventLog, recent: RecentEvents | None = None,
        batch_size: int = 500,
    ) -> None:
        super().__init__(bootstrap, topic, "seismo-gateway-search", "recent-events")
        self.events = events
        self.recent = recent
        self.batch_size = batch_size
        self.undecodable = 0
        self.failed_batches = 0

    def _assign(self) -> None:
        parts = self._assign_recent(self.events.lookback_s, self.events.clock, self.events.max_events)
        if parts is not None:
            log.info("reading %d recent events of %s", sum(self._end[p] - self._start[p] for p in parts),
                     self.topic)

    def _check_caught_up(self) -> None:
        if self._reached_end():
            self.events.caught_up.set()
            if self.recent is not None:
                self.recent.caught_up.set()

    def _decode(self, messages: list[Message]) -> list[tuple[Event, float, LoggedEvent]]:
        out: list[tuple[Event, float, LoggedEvent]] = []
        codec = codec_for("event")
        for msg in messages:
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    log.warning("enriched-event consumer: %s", err)
                continue
            value = msg.value()
            if value is None:
                continue
            try:
                event = Event.from_avro(codec.decode(value))
            except (SchemaError, ValidationError) as exc:
                self.undecodable += 1
                log.error("skipping undecodable enriched event at %s[%s]@%s: %s",
                          msg.topic(), msg.partition(), msg.offset(), exc)
                continue
            _, ms = msg.timestamp()
            arrived = ms / 1000.0 if ms > 0 else self.events.clock()
            logged = LoggedEvent.of(event, self.topic, msg.partition() or 0, msg.offset() or 0, arrived)
            out.append((event, arrived, logged))
        return out

    def _run(self) -> None:
        try:
            self._assign()
            while not self._stop.is_set():
                batch = self._decode(self._consumer.consume(self.batch_size, 0.5))
                self.events.add(logged for _, _, logged in batch)
                self.events.expire()
                if self.recent is not None:
                    try:
                        if batch:
                            self.recent.add([(event, arrived) for event, arrived, _ in batch])
                        self.recent.expire()
                    except Exception:  # an engine failure must not end the feed: the next batch may work
                        self.failed_batches += 1
                        log.exception("could not index %d enriched events", len(batch))
                if not self.events.caught_up.is_set():
                    self._check_caught_up()
        finally:
            self._consumer.close()
