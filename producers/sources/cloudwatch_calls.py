"""How the CloudWatch streams call AWS: blocking boto3 calls off the event loop, under the rate limit.

:class:`AwsCaller` runs one boto3 call in a worker thread through
:meth:`producers.base.SourceContext.call`, after translating botocore errors by
what the poller does next:

* throttling (``ThrottlingException``, ``Throttling``, ``TooManyRequestsException``,
  ``RequestLimitExceeded``), 5xx answers and connection failures become
  :class:`~producers.exceptions.RecoverableError`: the token bucket and the
  jittered backoff retry them (botocore's own retries are turned off by
  :func:`producers.sources.cloudwatch.make_clients`, so every retry is counted once, here);
* every other ``ClientError`` (access denied, validation, missing log group)
  propagates unchanged: retrying would not help and the operator must act.

Also the millisecond/datetime conversions every CloudWatch stream needs.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from botocore.exceptions import ClientError, ConnectionError, ConnectTimeoutError, ReadTimeoutError

from producers.base import SourceContext
from producers.exceptions import RecoverableError
from producers.sources.objects import Failure

T = TypeVar("T")

THROTTLING_CODES = frozenset({
    "ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded",
    "ServiceUnavailable", "ServiceUnavailableException", "LimitExceededException",
})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class AwsThrottled(RecoverableError):
    """AWS asked us to slow down, or was briefly unavailable; the poller retries with backoff."""


GONE_CODES = frozenset({"ResourceNotFoundException"})
DENIED_CODES = frozenset({"AccessDeniedException", "AccessDenied", "UnauthorizedOperation"})
REJECTED_CODES = frozenset({"InvalidParameterException", "ValidationException", "MalformedQueryException"})


def object_failure(exc: ClientError) -> Failure | None:
    """The per-object failure an error on *one* log group or query stands for (None: not per-object).

    AWS's error codes (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/
    CommonErrors.html and each action's Errors section): a deleted group answers
    ``ResourceNotFoundException``, a group outside the caller's policy ``AccessDeniedException``.
    """
    code = str(exc.response.get("Error", {}).get("Code", ""))
    if code in GONE_CODES:
        return Failure.GONE
    if code in DENIED_CODES:
        return Failure.DENIED
    if code in REJECTED_CODES:
        return Failure.REJECTED
    return None


def translate(exc: Exception) -> Exception:
    """The error the poller should see for a failed boto3 call (see the module docstring)."""
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in THROTTLING_CODES or status >= 500:
            return AwsThrottled(f"{exc.operation_name}: {code or status}")
        return exc
    if isinstance(exc, ConnectionError | ConnectTimeoutError | ReadTimeoutError):
        return AwsThrottled(f"AWS unreachable: {exc}")
    return exc


class AwsCaller:
    """Runs boto3 calls for one source: rate-limited, retried, never blocking the event loop."""

    def __init__(self, ctx: SourceContext) -> None:
        self.ctx = ctx

    async def __call__(self, stream: str, call: Callable[[], T]) -> T:
        """Await ``call()`` in a thread; raise the last :class:`AwsThrottled` once retries are spent."""

        async def attempt() -> T:
            try:
                return await asyncio.to_thread(call)
            except (ClientError, ConnectionError, ConnectTimeoutError, ReadTimeoutError) as exc:
                raise translate(exc) from exc

        return await self.ctx.call(stream, attempt)


def to_ms(ts: datetime) -> int:
    return int((ts - _EPOCH) / timedelta(milliseconds=1))


def from_ms(ms: int | float) -> datetime:
    return _EPOCH + timedelta(milliseconds=int(ms))


def stable_id(prefix: str, *parts: object) -> str:
    """An event id that depends only on ``parts``: a re-read record keeps its id."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).hexdigest()
    return f"{prefix}-{digest[:32]}"
