"""One log format for every Seismo process: ``SEISMO_LOG_FORMAT=text|json``.

``setup_logging(level, fmt)`` configures the root logger once per process (the CLI
calls it before a long-running command starts); it writes to stderr, so stdout stays
for the data a command prints.

* ``text``: ``2026-12-05T23:30:24.123Z INFO seismo.worker: message step=normalize partition=2``
  — ISO-8601 in UTC with the zone, always, plus every ``extra=`` field as ``key=value``.
* ``json``: one object per line with ``ts``, ``level``, ``logger``, ``message``, every
  ``extra=`` field, and ``exc`` when an exception is attached.

Attach context to a record with :func:`fields`::

    log.warning("cannot decode message", extra=fields(step="normalize", partition=2, offset=41))

librdkafka's own log lines (``%3|…|FAIL|rdkafka#producer-1|…``) reach the same handlers
when a client is built with :func:`kafka_logging` in its config.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping
from typing import Any, Literal, TextIO

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_KAFKA_LOGGER = "seismo.kafka"
_CHATTY = ("faiss", "httpx")
"""Libraries that log routine work at INFO (import-time probing, every HTTP request); WARNING and up only."""


def fields(**values: Any) -> dict[str, Any]:
    """The ``extra=`` mapping for a log call; each value appears in both formats.

    A name a LogRecord already uses (``name``, ``msg``, ``args`` …) is stored with a
    trailing underscore, since ``logging`` refuses to overwrite it.
    """
    return {(f"{k}_" if k in _STANDARD else k): v for k, v in values.items()}


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The ``extra=`` fields of ``record``, in the order they were given."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


def _utc(record: logging.LogRecord) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{stamp}.{int(record.msecs):03d}Z"


class TextFormatter(logging.Formatter):
    """``<UTC time> <LEVEL> <logger>: <message> k=v …`` on one line (tracebacks follow it)."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        extra = " ".join(f"{k}={_plain(v)}" for k, v in record_fields(record).items())
        line = f"{_utc(record)} {record.levelname} {record.name}: {message}" + (f" {extra}" if extra else "")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per record; values that JSON cannot hold are written with ``str``."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {"ts": _utc(record), "level": record.levelname, "logger": record.name,
                               "message": record.getMessage()}
        for key, value in record_fields(record).items():
            doc.setdefault(key, value)
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, ensure_ascii=False)


def _plain(value: Any) -> str:
    text = str(value)
    return json.dumps(text) if (not text or any(c.isspace() or c in "\"=" for c in text)) else text


def formatter(fmt: LogFormat) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else TextFormatter()


def setup_logging(level: str | int = "INFO", fmt: LogFormat = "text", stream: TextIO | None = None) -> None:
    """Route every logger (librdkafka's included) to ``stream`` (stderr) in format ``fmt``.

    Replaces the root logger's handlers, so calling it again switches the format; ``level``
    is the handler's, and the root logger's level is only ever lowered to it.  Raises
    ValueError for an unknown ``fmt`` or level name.
    """
    if fmt not in LOG_FORMATS:
        raise ValueError(f"unknown log format {fmt!r}: use text or json")
    number = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(number, int):
        raise ValueError(f"unknown log level {level!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(fmt))
    handler.setLevel(number)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    # The handler filters; the root only ever opens up, so a caller's own handlers (pytest's
    # log capture, say) keep seeing what they saw before.
    root.setLevel(min(root.level or number, number))
    for name in _CHATTY:
        logging.getLogger(name).setLevel(max(number, logging.WARNING))
    logging.captureWarnings(True)


def kafka_logging(config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``config`` plus confluent-kafka's ``logger`` key, so librdkafka logs through ``seismo.kafka``.

    The lines are delivered when the client is polled; a client that is never polled
    (an AdminClient used for one metadata request) stays silent instead of printing
    ``%3|…`` lines to the terminal.
    """
    return {**(config or {}), "logger": logging.getLogger(_KAFKA_LOGGER)}
