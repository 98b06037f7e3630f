"""Errors of the producers package, named by what the caller does next."""

from __future__ import annotations


class ProducerError(Exception):
    """Base class of every error raised by :mod:`producers`."""


class RecoverableError(ProducerError):
    """Retrying later may succeed (broker unavailable, timeouts)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidEvent(ProducerError):
    """A poison input: it can never become valid.  It goes to the dead-letter topic.

    ``reason`` is the human-readable explanation stored with the dead letter;
    ``error_type`` classifies it (``invalid_json``, ``invalid_event`` …).
    """

    def __init__(self, reason: str, error_type: str = "invalid_event") -> None:
        super().__init__(reason)
        self.reason = reason
        self.error_type = error_type


class PublishError(RecoverableError):
    """Messages were not acknowledged by the broker; they may be published again safely."""


class DeliveryFailed(PublishError):
    """The broker refused messages (or their delivery timed out): they are gone from the
    producer's queue, so waiting longer acknowledges nothing; publish them again."""
