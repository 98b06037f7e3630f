"""The :class:`Redactor`: finds secrets in a line and replaces them with placeholders."""

from __future__ import annotations

from . import detectors as d
from .model import Finding, Redacted, RedactionConfig, SecretKind

_AUTH_KINDS = frozenset({SecretKind.BEARER_TOKEN, SecretKind.BASIC_AUTH})
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
# Earlier kinds in the enum are more specific; they label a merged span on ties.
_RANK = {kind: i for i, kind in enumerate(SecretKind)}


class Redactor:
    """Replaces secrets in text with ``<SECRET:kind>`` placeholders.

    Stateless after construction and safe to share between threads and agents. ``redact``
    never raises for any ``str`` input, never blocks, and is idempotent: redacting its own
    output changes nothing. Key names, users and hosts around a secret are kept, so
    ``password=hunter2 user=bob`` becomes ``password=<SECRET:password> user=bob``.
    """

    def __init__(self, config: RedactionConfig | None = None) -> None:
        self.config = cfg = config or RedactionConfig()
        self._enabled = on = cfg.enabled
        self._pem = SecretKind.PRIVATE_KEY in on
        self._url = SecretKind.URL_PASSWORD in on
        self._auth = bool(on & _AUTH_KINDS)
        self._jwt = SecretKind.JWT in on
        self._kv = bool(on & d.KEY_VALUE_KINDS)
        self._card = SecretKind.CREDIT_CARD in on
        self._email = SecretKind.EMAIL in on
        self._runs = (
            d.token_runs(on, cfg.min_token_length, cfg.entropy_threshold) if on & d.TOKEN_RUN_KINDS else None
        )

    def redact(self, text: str) -> Redacted:
        """Return ``text`` with every enabled kind of secret replaced by its placeholder.

        Overlapping candidates are merged into one span (so no fragment of a secret can
        survive between two findings) and labelled with the kind of the longest candidate.
        """
        lower = text.lower()
        if len(lower) != len(text):  # rare: some non-ASCII letters change length
            lower = text.translate(_ASCII_LOWER)
        cands: list[d.Candidate] = []
        # The pre-filter: substring tests decide which detectors can possibly match, so an
        # ordinary line costs a few `in` checks plus the token-run and card scans.
        if self._pem and "-----BEGIN" in text:
            d.pem(text, lower, cands)
        if self._url and "://" in text and "@" in text:
            d.url_password(text, lower, cands)
        if self._auth and ("bearer" in lower or "authoriz" in lower):
            d.auth_header(text, lower, cands)
        if self._jwt and "eyJ" in text:
            d.jwt(text, lower, cands)
        if self._kv and (
            "pass" in lower
            or "pwd" in lower
            or "secret" in lower
            or "token" in lower
            or "key" in lower
            or "cred" in lower
        ):
            d.key_value(text, lower, cands)
        if self._email and "@" in text:
            d.email(text, lower, cands)
        if self._card:
            d.credit_card(text, lower, cands)
        if self._runs is not None:
            self._runs(text, lower, cands)
        if not cands:
            return Redacted(text)
        findings = self._merge(cands)
        if not findings:
            return Redacted(text)
        parts: list[str] = []
        pos = 0
        for f in findings:
            parts.append(text[pos : f.start])
            parts.append(f.kind.placeholder)
            pos = f.end
        parts.append(text[pos:])
        return Redacted("".join(parts), tuple(findings))

    def _merge(self, cands: list[d.Candidate]) -> list[Finding]:
        """Union overlapping candidates; label each union with its longest candidate's kind."""
        enabled = self._enabled
        spans = sorted((s, e, _RANK[k], k) for k, s, e in cands if k in enabled and e > s)
        merged: list[Finding] = []
        start, end, label, label_len = -1, -1, SecretKind.HIGH_ENTROPY, -1
        for s, e, _, kind in spans:
            if s >= end:
                if label_len >= 0:
                    merged.append(Finding(label, start, end))
                start, end, label, label_len = s, e, kind, e - s
                continue
            end = max(end, e)
            if (e - s, -_RANK[kind]) > (label_len, -_RANK[label]):
                label, label_len = kind, e - s
        if label_len >= 0:
            merged.append(Finding(label, start, end))
        return merged
