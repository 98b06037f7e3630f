"""The pure normalize step: redaction, then per-service template mining.

``Normalizer.normalize(event) -> Event`` returns a copy of the event in which

* ``message``, every attribute key and every attribute value have had their secrets
  replaced by ``<SECRET:kind>`` placeholders (an attribute whose *key* names a secret
  -- ``password``, ``api_key``, ``Authorization`` -- loses its whole value); ``id``,
  ``service``, ``entity`` and ``metric`` are identifiers and pass unchanged;
* ``template`` and ``template_id`` are filled: log-like kinds (``log``, ``event``,
  ``error``, ``alert`` by default) go through the service's online
  :class:`~stream_processors.normalize.templating.TemplateMiner` (semantic placeholders, then
  mining); other kinds (metrics) keep their redacted message as template with an id
  hashed from it.

Mining sees only redacted text, so no template can hold a secret. Template ids are
stable: a miner's id is derived from the text its template was first seen as, and a
template that gains a wildcard keeps its id. Ids are per service (the same text in two
services has the same id): key anything by ``(service, template_id)``.

Redaction is cheap on the hot path: an ASCII message is split once, the
:class:`~stream_processors.normalize.screen.ScreeningRedactor` passes it when a line of
its shape (its digits aside) is known clean (one look-up) or its own checks find no
trigger, and the same tokens go on to the masker; only a line that may hold a secret
pays for the full redactor. Attributes seen before and known clean cost one set test per
event. The output is exactly that of the plain :class:`~stream_processors.normalize.redaction.Redactor`
(the unit tests compare them).

Pure and synchronous: no Kafka, no I/O. Not thread-safe (miners and memos are
mutable); one instance per worker process. Persistence of the miners is the caller's
(:meth:`snapshot` / :meth:`restore`, used by :mod:`stream_processors.normalize.durable`).
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from schemas.models import Event, EventKind
from stream_processors.normalize.redaction import Redactor, SecretKind
from stream_processors.normalize.redaction import detectors as d
from stream_processors.normalize.screen import ScreeningRedactor
from stream_processors.normalize.templating import Change, Masker, MinerConfig, TemplateMiner

LOG_LIKE: frozenset[EventKind] = frozenset({EventKind.LOG, EventKind.EVENT, EventKind.ERROR, EventKind.ALERT})
# A finding of these kinds right after "key=" means the key names a secret.
_KEYED_KINDS = d.KEY_VALUE_KINDS | {SecretKind.BEARER_TOKEN, SecretKind.BASIC_AUTH}
_PROBE_VALUE = "Zq7Zq7Zq7"  # a value every key-value detector takes for a secret


@dataclass(frozen=True, slots=True)
class NormalizerConfig:
    """``mined_kinds``: kinds whose messages are template-mined. ``redact``: switch for
    the redactor (off only in benchmarks -- production must keep it on). ``miner``: the
    miners' hyper-parameters (a snapshot restores only into the same similarity)."""

    mined_kinds: frozenset[EventKind] = LOG_LIKE
    redact: bool = True
    miner: MinerConfig = field(default_factory=MinerConfig)


class Normalized(NamedTuple):
    """The enriched event and what it did to its service's templates (``None``: not mined)."""

    event: Event
    change: Change | None


def plain_template_id(text: str) -> str:
    """Stable id of an un-mined template (the message itself): ``M`` + a BLAKE2 hash."""
    return "M" + hashlib.blake2b(text.encode("utf-8"), digest_size=6).hexdigest()


# Recent ASCII messages that redaction passed unchanged: this many, this long at most.
_CLEAN_LINES = 8192
_CLEAN_LINE_CHARS = 512
_PLAIN_IDS = 10_000  # un-mined messages whose id is remembered


class Normalizer:
    """Redactor + one template miner per service + config. See the module docstring."""

    def __init__(
        self,
        config: NormalizerConfig | None = None,
        redactor: Redactor | None = None,
        masker: Masker | None = None,
    ) -> None:
        self.config = config or NormalizerConfig()
        self._screen = ScreeningRedactor(redactor) if self.config.redact else None
        self._masker = masker or Masker()
        self._miners: dict[str, TemplateMiner] = {}
        self._key_kinds: dict[str, SecretKind | None] = {}
        self._attr_memo: dict[tuple[str, str], tuple[str, str]] = {}
        self._clean_attrs: set[tuple[str, str]] = set()  # the memo's items redaction keeps
        self._clean_lines: set[str] = set()  # recent messages the screen passed whole
        self._plain_ids: dict[str, str] = {}  # un-mined message -> its plain_template_id

    # --- per-service miners ---------------------------------------------------------

    def miner(self, service: str) -> TemplateMiner:
        """The miner of ``service``, created empty on first use."""
        miner = self._miners.get(service)
        if miner is None:
            miner = self._miners[service] = TemplateMiner(self.config.miner, self._masker)
        return miner

    def snapshot(self, service: str) -> bytes:
        """The templates of ``service`` as bytes (deterministic JSON). Pure."""
        return self.miner(service).save_state()

    def restore(self, service: str, blob: bytes) -> None:
        """Replace the templates of ``service`` with a :meth:`snapshot`.

        Raises :class:`~stream_processors.normalize.templating.InvalidState` on corrupt bytes or a
        snapshot taken with another similarity; the service's miner is then unchanged.
        """
        self.miner(service).load_state(blob)

    def forget(self, service: str) -> None:
        """Drop the in-memory templates of ``service`` (e.g. its partition moved away)."""
        self._miners.pop(service, None)

    def services(self) -> tuple[str, ...]:
        """Services with a miner in memory, sorted."""
        return tuple(sorted(self._miners))

    # --- the step -------------------------------------------------------------------

    def normalize(self, event: Event) -> Event:
        """``event`` redacted and templated; see the module docstring. Never raises on text."""
        return self.process(event).event

    def process(self, event: Event) -> Normalized:
        """Like :meth:`normalize`, and say whether the service's templates changed."""
        update: dict[str, object] = {}
        change = self._apply(event.kind, event.service, event.message, event.attributes, update)
        return Normalized(event.model_copy(update=update), change)

    def process_record(self, record: dict[str, Any]) -> Change | None:
        """:meth:`process` on an Event as its Avro record (changed in place): the hot path of
        the normalize step, which never builds an :class:`Event`.  Same output, field for field."""
        return self._apply(record["kind"], record["service"], record["message"], record["attributes"], record)

    def _apply(
        self, kind: str, service: str, message: str, attributes: dict[str, str], update: dict[str, Any]
    ) -> Change | None:
        """Write into ``update`` the fields normalizing changes: ``template``, ``template_id``,
        and ``message`` / ``attributes`` when redaction changed them."""
        redacted, tokens = self._redact_message(message)
        clean_attributes = self._redact_attributes(attributes)
        if kind in self.config.mined_kinds:
            miner = self.miner(service)
            result = miner.add_masked(miner.masker.mask(redacted, tokens))
            update["template"], update["template_id"] = result.template, result.template_id
            change: Change | None = result.change
        else:
            tid = self._plain_ids.get(redacted)
            if tid is None:  # metric messages repeat ("latency_p95_ms of frontend")
                if len(self._plain_ids) >= _PLAIN_IDS:
                    self._plain_ids.clear()
                tid = self._plain_ids[redacted] = plain_template_id(redacted)
            update["template"], update["template_id"], change = redacted, tid, None
        if redacted is not message:
            update["message"] = redacted
        if clean_attributes is not attributes:
            update["attributes"] = clean_attributes
        return change

    def _redact_message(self, text: str) -> tuple[str, list[str] | None]:
        """``_redact(text)``, and ``text.split()`` when the text is ASCII and passed as it
        was: the screen's split, handed on to the masker so the line is split once.

        An ASCII line needs no NFKC pass (and its redaction is ASCII too); a line of a
        shape the screen knows as clean costs one split and one look-up."""
        screen = self._screen
        if screen is None or text in self._clean_lines:  # logs repeat themselves
            return text, None
        if not text.isascii():
            return self._redact(text), None
        tokens = text.split()
        if screen.passes(text, tokens):
            if len(text) <= _CLEAN_LINE_CHARS:
                if len(self._clean_lines) >= _CLEAN_LINES:
                    self._clean_lines.clear()
                self._clean_lines.add(text)
            return text, tokens
        return screen.full(text).text, None

    def _redact(self, text: str) -> str:
        """Redacted ``text``; a non-ASCII text is also redacted in NFKC form (what the
        masker sees), so a full-width ``password=x`` cannot slip through."""
        if self._screen is None:
            return text
        out = self._screen.redact(text).text
        if not out.isascii():
            folded = unicodedata.normalize("NFKC", out)
            again = self._screen.redact(folded)
            if again.changed:
                return again.text
        return out

    def _redact_attributes(self, attributes: dict[str, str]) -> dict[str, str]:
        """Redacted keys and values; ``attributes`` itself when nothing changed.

        Memoised per ``(key, value)``: attributes repeat far more than messages do."""
        if self._screen is None or not attributes or self._clean_attrs.issuperset(attributes.items()):
            return attributes
        memo = self._attr_memo
        out: dict[str, str] = {}
        changed = False
        for item in attributes.items():
            hit = memo.get(item)
            if hit is None:
                key, value = item
                hit = (self._redact(key), self._redact_attribute(key, value))
                if len(memo) >= 100_000:
                    memo.clear()
                    self._clean_attrs.clear()
                memo[item] = hit
                if hit == item:
                    self._clean_attrs.add(item)
            out[hit[0]] = hit[1]
            changed = changed or hit != item
        return out if changed else attributes

    def _redact_attribute(self, key: str, value: str) -> str:
        """The value redacted as it would be in a ``key=value`` log line; all of it when
        the key names a secret and the redactor found one (``"a b"`` under ``password``
        loses both words, ``null`` or ``***`` under it stays)."""
        if self._screen is None:
            return value
        if not key.isascii():
            key = unicodedata.normalize("NFKC", key)
        probe = self._screen.redact(f"{key}={value}")
        if not probe.changed:
            return value if value.isascii() else self._redact(value)
        kind = self._key_kind(key)
        if kind is not None:
            return kind.placeholder
        if probe.findings[0].start <= len(key) or not value.isascii():
            return self._redact(value)  # a finding inside the key, or NFKC needed: the value alone
        return probe.text[len(key) + 1 :]

    def _key_kind(self, key: str) -> SecretKind | None:
        """The kind of secret ``key`` names (``password``, ``Authorization``...), or ``None``."""
        if key in self._key_kinds:
            return self._key_kinds[key]
        assert self._screen is not None
        cut = len(key) + 1
        probe = self._screen.redact(f"{key}={_PROBE_VALUE}")
        kind = next((f.kind for f in probe.findings if f.start == cut and f.kind in _KEYED_KINDS), None)
        if len(self._key_kinds) >= 10_000:
            self._key_kinds.clear()
        self._key_kinds[key] = kind
        return kind
