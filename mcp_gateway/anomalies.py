"""The recent part of ``seismo.anomalies``: what ``service_health`` and ``list_anomalies`` read.

:class:`AnomalyMaterializer` reads the last ``lookback_s`` (Kafka record time) of every
partition and follows the topic; :class:`AnomalyWindow` keeps at most ``max_items`` anomalies,
the oldest arrival going first.  ``ever_published`` tells "the scorer never wrote anything"
(a tool error) from "nothing anomalous lately" (a healthy answer).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime

from confluent_kafka import KafkaError
from pydantic import ValidationError

from mcp_gateway.follower import TopicFollower
from schemas.codec import codec_for
from schemas.exceptions import SchemaError
from schemas.models import Anomaly

log = logging.getLogger(__name__)


class AnomalyWindow:
    """Recent anomalies by id; one feeding thread, many readers (copies out)."""

    def __init__(
        self, max_items: int = 50_000, lookback_s: float = 6 * 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_items = max_items
        self.lookback_s = lookback_s
        self.clock = clock
        self.caught_up = threading.Event()
        self.ever_published = False
        self._lock = threading.Lock()
        self._items: OrderedDict[str, tuple[Anomaly, float]] = OrderedDict()

    def add(self, anomaly: Anomaly, arrived: float) -> None:
        with self._lock:
            self.ever_published = True
            self._items[anomaly.id] = (anomaly, arrived)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)

    def expire(self) -> None:
        cutoff = self.clock() - self.lookback_s
        with self._lock:
            while self._items and next(iter(self._items.values()))[1] < cutoff:
                self._items.popitem(last=False)

    def query(
        self, service: str | None = None, since: datetime | None = None, min_score: float = 0.0,
        arrived_after: float | None = None,
    ) -> list[Anomaly]:
        """Matching anomalies, newest event time first (ties by id)."""
        with self._lock:
            items = [a for a, t in self._items.values() if arrived_after is None or t >= arrived_after]
        out = [
            a for a in items
            if (service is None or a.service == service)
            and (since is None or a.timestamp >= since)
            and a.score >= min_score
        ]
        out.sort(key=lambda a: (-a.timestamp.timestamp(), a.id))
        return out


class AnomalyMaterializer(TopicFollower):
    """Feeds an :class:`AnomalyWindow` from ``seismo.anomalies``.  Daemon thread; never commits."""

    def __init__(self, bootstrap: str, topic: str, window: AnomalyWindow) -> None:
        super().__init__(bootstrap, topic, "seismo-gateway-anomalies", "anomalies")
        self.window = window

    def _assign(self) -> None:
        parts = self._assign_recent(self.window.lookback_s, self.window.clock, self.window.max_items)
        if parts is not None and any(high > 0 for high in self._end.values()):
            self.window.ever_published = True

    def _check_caught_up(self) -> None:
        if self._reached_end():
            self.window.caught_up.set()

    def _run(self) -> None:
        codec = codec_for("anomaly")
        try:
            self._assign()
            while not self._stop.is_set():
                for msg in self._consumer.consume(500, 0.5):
                    err = msg.error()
                    if err is not None:
                        if err.code() != KafkaError._PARTITION_EOF:
                            log.warning("anomaly consumer: %s", err)
                        continue
                    value = msg.value()
                    if value is None:
                        continue
                    try:
                        anomaly = Anomaly.from_avro(codec.decode(value))
                    except (SchemaError, ValidationError) as exc:
                        log.error("skipping undecodable anomaly at offset %s: %s", msg.offset(), exc)
                        continue
                    _, ms = msg.timestamp()
                    self.window.add(anomaly, ms / 1000.0 if ms > 0 else self.window.clock())
                self.window.expire()
                if not self.window.caught_up.is_set():
                    self._check_caught_up()
        finally:
            self._consumer.close()
