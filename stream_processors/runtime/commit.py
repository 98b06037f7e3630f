"""A synchronous offset commit that a stop can walk away from.

librdkafka's synchronous commit has no timeout, and one sent as the broker goes away can block for
minutes (measured: a commit issued within milliseconds of a broker's shutdown had not returned
120 s later, with ``socket.timeout.ms`` at its 60 s default or at 10 s).  Called on the main
thread, such a call also keeps Python's signal handlers from running: SIGTERM is not even seen,
and the step is killed at the end of its grace (tests/chaos/test_broker_outage.py caught the
correlate step so, in ``_commit``).

:class:`Committer` runs each commit on a helper thread and waits for it in short slices, so signal
handlers run; while the runtime is not stopping it waits as long as the commit takes (as before);
once it is stopping, a commit that has not returned within ``grace_s`` is abandoned
(:class:`CommitAbandoned`).  The consumer is then left as it is (closing it would wait on the same
commit): the process leaves without closing it (``StepRuntime.abandoned``), and the partitions
replay from the last commit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition


class CommitAbandoned(KafkaException):  # type: ignore[misc]
    """A commit that had not returned ``grace_s`` after the stop; it may still land later."""


class Committer:
    """Synchronous commits on a helper thread (one at a time), abandoned once stopping."""

    def __init__(self, stopping: Callable[[], bool], grace_s: float = 2.0, slice_s: float = 0.2) -> None:
        self.stopping, self.grace_s, self.slice_s = stopping, grace_s, slice_s
        self._thread: threading.Thread | None = None

    @property
    def stuck(self) -> bool:
        """Whether an abandoned commit is still inside librdkafka."""
        return self._thread is not None and self._thread.is_alive()

    def commit(self, consumer: Any, offsets: list[TopicPartition]) -> None:
        """``consumer.commit(offsets=offsets, asynchronous=False)``: returns when it did, raises what it
        raised, or CommitAbandoned once stopping and it has not returned within ``grace_s``."""
        if self.stuck:
            raise CommitAbandoned(KafkaError(KafkaError._TIMED_OUT, "an earlier commit has not returned"))
        outcome: list[BaseException | None] = []

        def run() -> None:
            try:
                consumer.commit(offsets=offsets, asynchronous=False)
                outcome.append(None)
            except BaseException as exc:  # handed to the waiting thread
                outcome.append(exc)

        thread = threading.Thread(target=run, name="seismo-commit", daemon=True)
        self._thread = thread
        thread.start()
        stopped_at: float | None = None
        while True:
            thread.join(self.slice_s)  # a slice at a time: the main thread's signal handlers run between
            if not thread.is_alive():
                break
            if self.stopping():
                stopped_at = time.monotonic() if stopped_at is None else stopped_at
                if time.monotonic() - stopped_at >= self.grace_s:
                    raise CommitAbandoned(KafkaError(KafkaError._TIMED_OUT, (
                        f"the commit had not returned {self.grace_s:.0f} s after the stop (the broker went "
                        "away with it in flight)")))
        if outcome and outcome[0] is not None:
            raise outcome[0]
