"""Secret redaction for log lines: ``Redactor().redact(line) -> Redacted``.

The normalizer runs every line through a :class:`Redactor` before anything leaves it.
See :mod:`.redactor` for the contract and :mod:`.patterns` for what is recognised.
"""

from .entropy import luhn_ok, shannon_entropy
from .model import ALL_KINDS, Finding, Redacted, RedactionConfig, SecretKind
from .redactor import Redactor

__all__ = [
    "ALL_KINDS",
    "Finding",
    "Redacted",
    "RedactionConfig",
    "Redactor",
    "SecretKind",
    "luhn_ok",
    "shannon_entropy",
]
