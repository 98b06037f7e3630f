"""Result and configuration types for secret redaction.

Everything here is an immutable value: a :class:`Redactor` is configured with a
:class:`RedactionConfig` and every call returns a :class:`Redacted`. A finding records
*what kind* of secret sat *where* in the input; it never carries the secret itself, so a
``Redacted`` can be logged, counted or sent anywhere without re-leaking what it removed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class SecretKind(enum.Enum):
    """A kind of secret. The value is the label written into the text: ``<SECRET:value>``."""

    PRIVATE_KEY = "private_key"
    URL_PASSWORD = "url_password"
    BEARER_TOKEN = "bearer_token"
    BASIC_AUTH = "basic_auth"
    JWT = "jwt"
    GITHUB_TOKEN = "github_token"
    SLACK_TOKEN = "slack_token"
    STRIPE_KEY = "stripe_key"
    GOOGLE_API_KEY = "google_api_key"
    AWS_ACCESS_KEY = "aws_access_key"
    AWS_SECRET_KEY = "aws_secret_key"
    PASSWORD = "password"
    SECRET = "secret"
    TOKEN = "token"
    API_KEY = "api_key"
    CREDIT_CARD = "credit_card"
    EMAIL = "email"
    HIGH_ENTROPY = "high_entropy"

    @property
    def placeholder(self) -> str:
        """The text that replaces a secret of this kind, e.g. ``<SECRET:password>``."""
        return f"<SECRET:{self.value}>"


ALL_KINDS: frozenset[SecretKind] = frozenset(SecretKind)


@dataclass(frozen=True, slots=True)
class Finding:
    """One redacted span: ``kind`` of secret found at ``text[start:end]`` of the *input*.

    Offsets refer to the string passed to ``redact``, not to the redacted output.
    """

    kind: SecretKind
    start: int
    end: int

    @property
    def span(self) -> tuple[int, int]:
        """``(start, end)`` in the input text, end exclusive."""
        return (self.start, self.end)


@dataclass(frozen=True, slots=True)
class Redacted:
    """The outcome of one ``redact`` call.

    ``text`` is the input with every finding replaced by its kind's placeholder; when
    nothing was found it *is* the input string (same object), so callers can cheaply test
    ``result.changed``. ``findings`` are sorted by ``start`` and never overlap.
    """

    text: str
    findings: tuple[Finding, ...] = ()

    @property
    def changed(self) -> bool:
        """True when at least one secret was redacted."""
        return bool(self.findings)

    @property
    def kinds(self) -> frozenset[SecretKind]:
        """The distinct kinds that were redacted."""
        return frozenset(f.kind for f in self.findings)


@dataclass(frozen=True, slots=True)
class RedactionConfig:
    """What a :class:`Redactor` looks for.

    ``kinds``: the kinds that are redacted (default: all). ``emails``: a switch for
    :attr:`SecretKind.EMAIL` on top of ``kinds`` (email addresses are PII rather than
    credentials, so deployments commonly want them visible). ``entropy_threshold``:
    minimum Shannon entropy, in bits per character, for a key-less token to count as a
    :attr:`SecretKind.HIGH_ENTROPY` secret; ``min_token_length``: shortest such token.
    Raises ``ValueError`` on construction when a number is out of range.
    """

    kinds: frozenset[SecretKind] = field(default=ALL_KINDS)
    emails: bool = True
    entropy_threshold: float = 3.5
    min_token_length: int = 20

    def __post_init__(self) -> None:
        if not 0.0 < self.entropy_threshold <= 8.0:
            raise ValueError(f"entropy_threshold must be in (0, 8], got {self.entropy_threshold}")
        if self.min_token_length < 8:
            raise ValueError(f"min_token_length must be >= 8, got {self.min_token_length}")

    @property
    def enabled(self) -> frozenset[SecretKind]:
        """The kinds actually redacted, after applying the ``emails`` switch."""
        return self.kinds if self.emails else self.kinds - {SecretKind.EMAIL}
