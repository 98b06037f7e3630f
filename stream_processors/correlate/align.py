"""Event-time alignment between the per-partition stage and the one global correlator.

Pure.  Why: the signals of every input partition meet on one signals partition in an
order that depends on timing (fetch sizes, a crash, a rebalance).  The correlator must
not: it takes signals in ``(order, id)`` order, and only once every input partition has
passed that point.

* :class:`PartitionClock` (stage 1, one per enriched partition) gives each signal its
  *order key*, ``max(ts, watermark - lateness)``: a signal later than ``lateness`` behind
  its own partition is ordered as if it came at the edge, a property of that partition's
  own (deterministic) order.  At the end of a batch the clock's watermark goes out as a
  *mark*, after the batch's signals.
* :class:`Aligner` (stage 2) buffers signals and releases, in order, those whose key is
  below ``min(marks of every expected partition) - lateness``.  Since a partition's mark
  never passes its later signals' keys + lateness, no signal can arrive after the release
  point passed it: the correlator sees the same sequence whatever the arrival order.

Partitions known to be absent (empty on the broker) are left out of the minimum; a
signal that arrives behind the release point anyway (an absent partition came to life,
or an anomaly — anomalies only annotate and are order-independent) is released at once.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any


@dataclass
class PartitionClock:
    """Stage 1 watermark of one input partition; JSON via :meth:`to_json` / :meth:`from_json`."""

    watermark_us: int = 0

    def order_key(self, ts_us: int, lateness_us: int) -> int:
        """The order key of a signal at ``ts_us``, then move the watermark past it."""
        key = max(ts_us, self.watermark_us - lateness_us)
        self.observe(ts_us)
        return key

    def observe(self, ts_us: int) -> None:
        if ts_us > self.watermark_us:
            self.watermark_us = ts_us

    def to_json(self) -> dict[str, Any]:
        return {"wm": self.watermark_us}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PartitionClock:
        return cls(int(data.get("wm", 0)))


@dataclass
class Aligner:
    """Stage 2 buffer of signals waiting for every partition's mark."""

    marks: dict[str, int] = field(default_factory=dict)
    offsets: dict[str, int] = field(default_factory=dict)  # partition → offset after its last marked record
    released_us: int = 0  # every signal with key < this went out
    buffer: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)  # sorted (key, id, signal)

    def mark(self, partition: str, watermark_us: int, next_offset: int = 0) -> None:
        if watermark_us > self.marks.get(partition, 0):
            self.marks[partition] = watermark_us
        if next_offset > self.offsets.get(partition, 0):
            self.offsets[partition] = next_offset

    def threshold(self, expected: set[str], lateness_us: int, idle: Collection[str] = ()) -> int | None:
        """The release point, or None while an expected partition has sent no mark.  ``idle``
        partitions (nothing more is coming) hold nothing back; when all are idle, everything goes."""
        if not expected or any(p not in self.marks for p in expected):
            return None
        busy = [self.marks[p] for p in expected if p not in idle]
        if not busy:
            return max(self.marks[p] for p in expected) + 1
        return min(busy) - lateness_us

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
        return {"marks": self.marks, "offs": self.offsets, "rel": self.released_us,
                "buf": [list(x) for x in self.buffer]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Aligner:
        return cls({str(k): int(v) for k, v in data.get("marks", {}).items()},
                   {str(k): int(v) for k, v in data.get("offs", {}).items()}, int(data.get("rel", 0)),
                   [(int(k), str(i), dict(s)) for k, i, s in data.get("buf", [])])
