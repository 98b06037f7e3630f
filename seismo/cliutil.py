"""What every ``seismo`` command shares: the consoles, the one error style, settings and logging.

Every error a user can cause ends as one ``error: …`` line on stderr (several lines only
when several variables are wrong, each one complete) and an exit code: 2 for a bad
argument, variable or input file, 1 for a dependency that does not answer or a run
that failed.  :class:`seismo.cli.SeismoGroup` turns the exceptions below into that
line, so command bodies just raise them.
"""

from __future__ import annotations

import logging
import os

from rich.console import Console
from rich.markup import escape

from seismo.envcheck import SettingsError, load_settings
from seismo.settings import Settings

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

EXIT_USAGE = 2
"""A bad argument, variable or input file: the user must change what they typed."""
EXIT_FAILED = 1
"""A dependency does not answer, or the run failed."""
EXIT_BUG = 70
"""An exception nobody anticipated (EX_SOFTWARE): a bug to report."""

DEBUG_VARIABLE = "SEISMO_DEBUG"


class UserError(Exception):
    """Something the user must fix; the message is the whole explanation, ``code`` the exit status."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message, self.code = message, code


def fail(message: str, code: int = EXIT_FAILED) -> UserError:
    """The error to ``raise`` for ``message``: ``raise fail("Kafka … does not answer")``."""
    return UserError(message, code)


def print_error(message: str) -> None:
    """``error: message`` on stderr, one line per line of ``message``; no markup is interpreted."""
    for line in message.splitlines() or [""]:
        err.print(f"[red]error:[/red] {escape(line)}", highlight=False)


def print_warning(message: str) -> None:
    err.print(f"[yellow]warning:[/yellow] {escape(message)}", highlight=False)


def debug_enabled() -> bool:
    """``SEISMO_DEBUG=1``: let unexpected exceptions print their traceback."""
    return os.environ.get(DEBUG_VARIABLE, "") not in ("", "0", "false", "no")


def settings(long_running: bool = False) -> Settings:
    """The validated settings; also sets up logging (``SEISMO_LOG_LEVEL``, ``SEISMO_LOG_FORMAT``).

    Short commands log warnings and errors only, so their own output stays readable;
    long-running ones (worker, gateway, poll, demo) log at ``SEISMO_LOG_LEVEL``.
    Raises :class:`SettingsError` naming each invalid variable.
    """
    from seismo.logs import setup_logging

    loaded = load_settings()
    level = logging.getLevelName(loaded.log_level)
    setup_logging(level if long_running else max(level, logging.WARNING), loaded.log_format)
    return loaded


def safe_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, fit to print (``redis://:***@host:6379/0``)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if not parts.password:
        return url
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{parts.netloc.rpartition('@')[2]}"))


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """``1 incident``, ``3 incidents``, ``1 line``."""
    return f"{count} {noun if count == 1 else (plural_form or noun + 's')}"


def describe_exception(exc: BaseException) -> tuple[str, int] | None:
    """The message and exit code for an exception a user can cause, or None for a bug."""
    from seismo.files import StructuredFileError
    from seismo.local.process import LocalServiceError

    if isinstance(exc, UserError):
        return exc.message, exc.code
    if isinstance(exc, SettingsError):
        return str(exc), EXIT_USAGE
    if isinstance(exc, StructuredFileError):
        return str(exc), EXIT_USAGE
    if isinstance(exc, LocalServiceError):
        return str(exc), EXIT_FAILED
    return None
