"""Errors of the stream processors, named by what the caller does next."""

from __future__ import annotations


class ProcessingError(Exception):
    """Base class of every error raised by :mod:`stream_processors`."""


class RecoverableError(ProcessingError):
    """Retrying the same input later may succeed."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidEvent(ProcessingError):
    """A poison message: it goes to the dead-letter topic with ``reason``; the stream goes on."""

    def __init__(self, reason: str, error_type: str = "invalid_event") -> None:
        super().__init__(reason)
        self.reason = reason
        self.error_type = error_type
