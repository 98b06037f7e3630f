"""The runtime's commits run on a helper thread: waited for while running, walked away from once a
stop has waited ``grace_s`` (librdkafka's sync commit can hang for minutes when the broker goes
away with it in flight; the consumer here stands in for that hang, which cannot be timed on a real
broker)."""

from __future__ import annotations

import signal
import threading
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from stream_processors.runtime.commit import CommitAbandoned, Committer

OFFSETS = [TopicPartition("t", 0, 5)]


class HangingConsumer:
    """``commit`` blocks until released (or forever), or raises / returns as told."""

    def __init__(self, error: KafkaException | None = None) -> None:
        self.release, self.error = threading.Event(), error
        self.calls: list[list[TopicPartition]] = []

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> Any:
        assert asynchronous is False
        self.calls.append(offsets)
        if self.error is not None:
            raise self.error
        self.release.wait()
        return None


def test_a_commit_is_waited_for_while_running_and_abandoned_once_a_stop_has_waited_its_grace() -> None:
    stopping, consumer = threading.Event(), HangingConsumer()
    committer = Committer(stopping.is_set, grace_s=0.3, slice_s=0.05)
    raised: list[BaseException] = []

    def commit() -> None:
        try:
            committer.commit(consumer, OFFSETS)
        except BaseException as exc:  # handed to the test
            raised.append(exc)

    caller = threading.Thread(target=commit, daemon=True)
    caller.start()
    caller.join(1.0)
    assert caller.is_alive() and not raised, "a running step must wait for its commit, however long"
    stopping.set()
    caller.join(5.0)
    assert not caller.is_alive(), "the stop did not walk away from the hanging commit"
    assert len(raised) == 1 and isinstance(raised[0], CommitAbandoned)
    assert isinstance(raised[0], KafkaException)  # the runtime's stop path handles it as a failed commit
    assert committer.stuck  # the commit is still inside the consumer: it must not be closed
    with pytest.raises(CommitAbandoned, match="earlier commit has not returned"):
        committer.commit(consumer, OFFSETS)
    assert len(consumer.calls) == 1, "no second commit is sent behind a stuck one"
    consumer.release.set()


def test_a_commit_returns_or_raises_what_the_consumer_did() -> None:
    committer = Committer(lambda: False)
    ok = HangingConsumer()
    ok.release.set()
    committer.commit(ok, OFFSETS)
    assert ok.calls == [OFFSETS] and not committer.stuck
    refused = HangingConsumer(KafkaException(KafkaError(KafkaError.REBALANCE_IN_PROGRESS)))
    with pytest.raises(KafkaException) as caught:
        committer.commit(refused, OFFSETS)
    assert caught.value.args[0].code() == KafkaError.REBALANCE_IN_PROGRESS
    assert not isinstance(caught.value, CommitAbandoned)


def test_signal_handlers_run_while_a_commit_hangs() -> None:
    # On the main thread, a commit stuck in C kept SIGTERM's handler from running at all.
    seen, consumer = threading.Event(), HangingConsumer()
    committer = Committer(seen.is_set, grace_s=0.0, slice_s=0.05)
    previous = signal.signal(signal.SIGUSR2, lambda *_: seen.set())
    try:
        timer = threading.Timer(0.3, lambda: signal.pthread_kill(threading.main_thread().ident or 0,
                                                                 signal.SIGUSR2))
        timer.start()
        with pytest.raises(CommitAbandoned):
            committer.commit(consumer, OFFSETS)  # ends only if the handler ran meanwhile
    finally:
        signal.signal(signal.SIGUSR2, previous)
        consumer.release.set()
    assert seen.is_set()
