"""Errors raised by the templating package, grouped by what the caller does next.

Every error subclasses :class:`TemplatingError`, so an adapter can catch the package
as a whole. None of them is retryable: each one means the input or the configuration
is wrong and must be fixed by whoever supplied it.
"""

from __future__ import annotations


class TemplatingError(Exception):
    """Base class of every error raised by ``stream_processors.normalize.templating``."""


class UnknownLogFormat(TemplatingError, KeyError):
    """A log format name was not recognised.

    The operator should pick one of the names listed in the message (``raw`` or
    ``loghub:SYSTEM``); nothing was parsed.
    """


class InvalidState(TemplatingError, ValueError):
    """Saved miner state could not be loaded (corrupt bytes or unknown version).

    The miner is left unchanged. Either restore a good snapshot or start from an
    empty state; templates will be re-learned but their ids are deterministic, so
    the same lines get the same ids again.
    """


class InvalidMaskRule(TemplatingError, ValueError):
    """A user-supplied masking rule is malformed (bad regex, bad placeholder).

    Raised at configuration time, before any line is masked; fix the rule.
    """
