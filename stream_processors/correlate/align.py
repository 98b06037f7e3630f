"""Event-time alignment between the per-partition stage and the one global correlator.

Pure.  Why: the signals of every input partition meet on one signals partition in an
order that depends on timing (fetch sizes, a crash, a rebalance).  The correlator must
not: it takes signals in ``(order, id)`` order, and only once every input partition has
passed that point.

* :class:`PartitionClock` (stage 1, one per enriched partition) gives each signal its
  *order key*, ``max(ts, low)``, where ``low`` is the partition's *promise*: no later key of
  this partition will be below it.  The promise trails the partition's watermark by the
  partition's own lateness, which **adapts to the disorder it has seen**: a decaying
  envelope of how far behind the watermark its events came (half-life
  :data:`DISORDER_HALF_LIFE_US` of event time), times :data:`DISORDER_MARGIN`, kept between
  the configured minimum and maximum.  A partition whose events come in order waits the
  minimum; one fed by a poller that delivers a minute late learns to wait a minute (up to the
  maximum).  A signal later than its partition's lateness is ordered at the promise, as if it
  came at the edge — a property of that partition's own (deterministic) order, so replays
  order it the same way.  At the end of a batch the clock's promise and watermark go out as
  a *mark*, after the batch's signals.
* :class:`Aligner` (stage 2) buffers signals and releases, in order, those whose key is
  below ``min(promise of every expected partition)``.  Since a partition's promise never
  passes its later signals' keys, no signal can arrive after the release point passed it: the
  correlator sees the same sequence whatever the arrival order.

Partitions known to be absent (empty on the broker) are left out of the minimum; a
signal that arrives behind the release point anyway (an absent partition came to life,
or an anomaly — anomalies only annotate and are order-independent) is released at once.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

DISORDER_HALF_LIFE_US = 600 * 1_000_000  # an envelope of disorder halves over 10 min of event time
DISORDER_MARGIN = 1.5  # a partition waits half again the disorder it has seen


@dataclass
class PartitionClock:
    """Stage 1 clock of one input partition; JSON via :meth:`to_json` / :meth:`from_json`.

    ``lateness_us`` is the most a partition may wait; ``min_lateness_us`` (default: the same,
    a fixed lateness) the least."""

    watermark_us: int = 0
    low_us: int | None = None  # the promise: no later order key of this partition is below it
    disorder_us: float = 0.0  # decaying envelope of (watermark - ts) over the events seen

    def order_key(self, ts_us: int, lateness_us: int, min_lateness_us: int | None = None) -> int:
        """The order key of a signal at ``ts_us``, then move the clock past it."""
        key = ts_us if self.low_us is None else max(ts_us, self.low_us)
        self.observe(ts_us, lateness_us, min_lateness_us)
        return key

    def observe(self, ts_us: int, lateness_us: int, min_lateness_us: int | None = None) -> None:
        """Move the watermark, the disorder envelope and the promise past an event at ``ts_us``."""
        if ts_us > self.watermark_us:
            if self.watermark_us and self.disorder_us:
                self.disorder_us *= 0.5 ** ((ts_us - self.watermark_us) / DISORDER_HALF_LIFE_US)
            self.watermark_us = ts_us
        elif self.watermark_us - ts_us > self.disorder_us:
            self.disorder_us = float(self.watermark_us - ts_us)
        least = lateness_us if min_lateness_us is None else min(min_lateness_us, lateness_us)
        wait = min(lateness_us, max(least, int(DISORDER_MARGIN * self.disorder_us)))
        low = self.watermark_us - wait
        if self.low_us is None or low > self.low_us:
            self.low_us = low

    def promise(self, lateness_us: int) -> int:
        """The mark's promise (a clock restored from before promises existed trails by ``lateness_us``)."""
        return self.watermark_us - lateness_us if self.low_us is None else self.low_us

    def to_json(self) -> dict[str, Any]:
        if self.low_us is None:
            return {"wm": self.watermark_us}
        return {"wm": self.watermark_us, "low": self.low_us, "dis": self.disorder_us}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PartitionClock:
        low = data.get("low")
        return cls(int(data.get("wm", 0)), None if low is None else int(low), float(data.get("dis", 0.0)))


@dataclass
class Aligner:
    """Stage 2 buffer of signals waiting for every partition's promise."""

    marks: dict[str, int] = field(default_factory=dict)  # partition → its promise (no key below it comes)
    offsets: dict[str, int] = field(default_factory=dict)  # partition → offset after its last marked record
    released_us: int = 0  # every signal with key < this went out
    buffer: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)  # sorted (key, id, signal)
    highs: dict[str, int] = field(default_factory=dict)  # partition → its watermark

    def mark(self, partition: str, promise_us: int, next_offset: int = 0,
             watermark_us: int | None = None) -> None:
        if promise_us > self.marks.get(partition, promise_us - 1):
            self.marks[partition] = promise_us
        high = promise_us if watermark_us is None else max(watermark_us, promise_us)
        if high > self.highs.get(partition, high - 1):
            self.highs[partition] = high
        if next_offset > self.offsets.get(partition, 0):
            self.offsets[partition] = next_offset

    def threshold(self, expected: set[str], idle: Collection[str] = ()) -> int | None:
        """The release point, or None while an expected partition has sent no mark.  ``idle``
        partitions (nothing more is coming) hold nothing back; when all are idle, everything goes."""
        if not expected or any(p not in self.marks for p in expected):
            return None
        busy = [self.marks[p] for p in expected if p not in idle]
        if not busy:
            return max(self.highs.get(p, self.marks[p]) for p in expected) + 1
        return min(busy)

    def offer(self, key: int, sid: str, signal: dict[str, Any]) -> bool:
        """Buffer a signal; False when it is already behind the release point (handle it now)."""
        if key < self.released_us:
            return False
        bisect.insort(self.buffer, (key, sid, signal), key=lambda x: (x[0], x[1]))
        return True

    def release(self, threshold: int) -> list[tuple[int, dict[str, Any]]]:
        """The buffered signals with key < ``threshold``, in ``(key, id)`` order."""
        if threshold <= self.released_us:
            return []
        self.released_us = threshold
        cut = bisect.bisect_left(self.buffer, threshold, key=lambda x: x[0])
        out = [(k, s) for k, _, s in self.buffer[:cut]]
        del self.buffer[:cut]
        return out

    def to_json(self) -> dict[str, Any]:
        return {"v": 2, "marks": self.marks, "highs": self.highs, "offs": self.offsets,
                "rel": self.released_us, "buf": [list(x) for x in self.buffer]}

    @classmethod
    def from_json(cls, data: dict[str, Any], lateness_us: int = 0) -> Aligner:
        """``lateness_us`` converts a state saved before promises (its marks were watermarks)."""
        marks = {str(k): int(v) for k, v in data.get("marks", {}).items()}
        if "v" in data:
            highs = {str(k): int(v) for k, v in data.get("highs", {}).items()}
        else:
            highs, marks = marks, {k: v - lateness_us for k, v in marks.items()}
        return cls(marks, {str(k): int(v) for k, v in data.get("offs", {}).items()}, int(data.get("rel", 0)),
                   [(int(k), str(i), dict(s)) for k, i, s in data.get("buf", [])], highs)
