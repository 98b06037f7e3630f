"""Per-object failures: one pod, issue, log group or query that cannot be read never stops a stream.

A stream that reads objects one at a time asks its :class:`ObjectGuard` what
to do when one of them fails.  The rule depends on the kind of failure
(:class:`Failure`), and is the same for every source (docs/sources.md,
"Per-object failures"):

============  ===============================================  =======================
failure       examples                                         verdict
============  ===============================================  =======================
``gone``      404: pod deleted between list and read, issue    ``SKIP``: counted and
              event deleted; ``ResourceNotFoundException``     logged; nothing is left
              for a deleted log group                          to read, so the object
                                                               leaves the cursor
``denied``    403 on one object (``pods/log`` not granted in   ``PARK`` at once:
              a namespace, a datasource the account may not    retrying cannot help
              query, ``AccessDeniedException`` on one group)
``rejected``  400 (container still waiting to start), a        ``RETRY`` next cycle
              per-query error in a Grafana response, other     with the object's
              4xx                                              cursor held, at most
                                                               ``object_attempts``
                                                               tries; then ``PARK``
============  ===============================================  =======================

``PARK`` returns one dead letter (error type ``object_parked``) naming the
object and its last error, counts ``seismo_poller_parked_total`` and skips the
object for ``park_s`` seconds on the source's clock; then it is tried again
with a fresh count.  What a stream does with its cursor on each verdict is
written in the stream's own docstring; none of them moves a cursor past data
it did not read except ``PARK``, which reports what it gave up on.
401 is never per-object: a token that does not work stops the poller.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum

from producers.base import Rejected, SourceContext
from producers.sources import AccessDenied, ApiRejected, NotFound

log = logging.getLogger(__name__)


class Failure(Enum):
    """Why one object could not be read (the ``reason`` label of ``seismo_poller_object_errors_total``)."""

    GONE = "gone"
    DENIED = "denied"
    REJECTED = "rejected"


class Verdict(Enum):
    """What the stream does with the object this cycle."""

    SKIP = "skip"  # the object is gone: drop it from the cursor and go on
    RETRY = "retry"  # hold the object's cursor; try again next cycle
    PARK = "park"  # give up on it for park_s; the returned dead letter reports it


def failure_of(exc: Exception) -> Failure | None:
    """The per-object failure an API error stands for; None when it is not per-object (401, others)."""
    if isinstance(exc, NotFound):
        return Failure.GONE
    if isinstance(exc, AccessDenied):
        return Failure.DENIED if exc.status == 403 else None
    if isinstance(exc, ApiRejected):
        return Failure.REJECTED
    return None


def failure_for_status(status: int) -> Failure:
    """The failure a per-object HTTP status (e.g. a Grafana query result's ``status``) stands for."""
    if status == 404:
        return Failure.GONE
    if status in (401, 403):
        return Failure.DENIED
    return Failure.REJECTED


MAX_RECORDS = 10_000
"""Objects tracked per stream; past it the oldest record is forgotten (pods come and go)."""


@dataclass
class _Record:
    strikes: int = 0
    parked_until: float | None = None


class ObjectGuard:
    """Counts failures per object of one stream and gives the verdict.  In memory; one per stream."""

    def __init__(self, ctx: SourceContext, stream: str) -> None:
        self.ctx, self.stream = ctx, stream
        self._records: dict[str, _Record] = {}

    @property
    def _labels(self) -> dict[str, str]:
        return {"source": self.ctx.source.value, "stream": self.stream}

    def parked(self, obj: str) -> bool:
        """Whether ``obj`` is parked now (skip it); an expired parking is lifted with a fresh count."""
        record = self._records.get(obj)
        if record is None or record.parked_until is None:
            return False
        if self.ctx.clock.monotonic() < record.parked_until:
            return True
        del self._records[obj]
        log.info("%s/%s: %s unparked; trying it again", self.ctx.source.value, self.stream, obj)
        return False

    def succeeded(self, obj: str) -> None:
        """``obj`` was read: forget its failures."""
        self._records.pop(obj, None)

    def failed(
        self, obj: str, failure: Failure, error: str, payload: bytes = b""
    ) -> tuple[Verdict, Rejected | None]:
        """Count one failure of ``obj`` and return the verdict (with a dead letter when parked)."""
        self.ctx.metrics.increment(
            "seismo_poller_object_errors_total", 1, {**self._labels, "reason": failure.value}
        )
        where = f"{self.ctx.source.value}/{self.stream}"
        if failure is Failure.GONE:
            self._records.pop(obj, None)
            log.info("%s: %s is gone, skipped: %s", where, obj, error)
            return Verdict.SKIP, None
        record = self._records[obj] = self._records.pop(obj, _Record())  # the newest goes last
        while len(self._records) > MAX_RECORDS:
            del self._records[next(iter(self._records))]
        record.strikes += 1
        if failure is Failure.REJECTED and record.strikes < self.ctx.object_attempts:
            log.warning("%s: %s not readable (attempt %d of %d), retried next cycle: %s",
                        where, obj, record.strikes, self.ctx.object_attempts, error)
            return Verdict.RETRY, None
        record.parked_until = self.ctx.clock.monotonic() + self.ctx.park_s
        self.ctx.metrics.increment("seismo_poller_parked_total", 1, self._labels)
        reason = (f"{obj} parked for {self.ctx.park_s:g}s after {record.strikes} failed "
                  f"attempt(s) ({failure.value}): {error}")
        log.warning("%s: %s", where, reason)
        letter = Rejected(reason[:2000], payload or error.encode("utf-8")[:65536], "object_parked")
        return Verdict.PARK, letter
