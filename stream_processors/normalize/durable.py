"""The normalize step with durable templates: a :class:`Normalizer` behind a StateStore.

:class:`NormalizeStep` is what the Faust agent calls. On the first event of a service it
loads that service's miner from the :class:`~stream_processors.runtime.state.StateStore` (key
``normalize:{service}``, value ``{"format", "version", "miner": base64 snapshot}``), so
a restarted or rebalanced worker keeps its template ids.

When a service's miner is saved (the order is what keeps ids meaningful):

* **after an event created or widened a template** (``NEW`` / ``GENERALIZED``) and
  *before* :meth:`NormalizeStep.process` returns, so before the enriched event is
  sent and before its input offset can be committed. Every template id that was ever
  published is therefore in the store, at least as general as when it was published.
* otherwise (only ``MATCHED`` events: just template sizes move) at most every
  ``every_events`` events or ``every_s`` seconds, whichever comes first.

After a crash, the worker restores the last save and replays from the last committed
offset. No published template can be missing from that save (only template sizes of
``MATCHED`` events can be), so replayed lines meet the templates they were published
with. Ids are a hash of the text a template was first seen as, so a template that is
re-learned from scratch gets its old id back, and no id ever names another template.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from schemas.models import Event
from stream_processors.normalize.normalizer import Normalized, Normalizer
from stream_processors.normalize.templating import Change, InvalidState
from stream_processors.runtime.state import StateStore

log = logging.getLogger(__name__)

STATE_FORMAT = "seismo.normalize"
STATE_VERSION = 1


def state_key(service: str) -> str:
    """The StateStore key of a service's templates."""
    return f"normalize:{service}"


def encode_state(blob: bytes) -> dict[str, Any]:
    """A miner snapshot as the JSON dict the StateStore keeps."""
    return {"format": STATE_FORMAT, "version": STATE_VERSION, "miner": base64.b64encode(blob).decode()}


def decode_state(value: dict[str, Any]) -> bytes:
    """The snapshot inside :func:`encode_state` output; raises :class:`InvalidState`."""
    if value.get("format") != STATE_FORMAT or value.get("version") != STATE_VERSION:
        raise InvalidState(f"not a {STATE_FORMAT} v{STATE_VERSION} value")
    try:
        return base64.b64decode(str(value["miner"]), validate=True)
    except (KeyError, binascii.Error) as exc:
        raise InvalidState(f"bad miner snapshot: {exc!r}") from exc


@dataclass(frozen=True, slots=True)
class CheckpointPolicy:
    """Save a service with only ``MATCHED`` events after this many events or seconds."""

    every_events: int = 1000
    every_s: float = 5.0


@dataclass(slots=True)
class _Tracked:
    unsaved: int = 0  # MATCHED events since the last save
    saved_at: float = 0.0


class NormalizeStep:
    """Loads, runs and checkpoints a :class:`Normalizer`. One per worker; not re-entrant.

    :meth:`process` may block on the store (Redis retries with backoff until it is back),
    which holds the partition: nothing is sent before the templates it uses are durable.
    """

    def __init__(
        self,
        normalizer: Normalizer,
        store: StateStore,
        policy: CheckpointPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.normalizer = normalizer
        self.store = store
        self.policy = policy or CheckpointPolicy()
        self._clock = clock
        self._tracked: dict[str, _Tracked] = {}

    async def process(self, event: Event) -> Normalized:
        """Normalize ``event``; returns once any template it created or widened is saved."""
        service = event.service
        tracked = self._tracked.get(service)
        if tracked is None:
            tracked = await self._load(service)
        result = self.normalizer.process(event)
        if result.change is None:
            return result
        if result.change is not Change.MATCHED:
            await self._save(service, tracked)
            return result
        tracked.unsaved += 1
        if (
            tracked.unsaved >= self.policy.every_events
            or self._clock() - tracked.saved_at >= self.policy.every_s
        ):
            await self._save(service, tracked)
        return result

    async def flush(self) -> None:
        """Save every loaded service with unsaved ``MATCHED`` events (e.g. on shutdown)."""
        for service, tracked in list(self._tracked.items()):
            if tracked.unsaved:
                await self._save(service, tracked)

    def forget_all(self) -> None:
        """Drop every service from memory; each is re-loaded from the store when next seen.

        Call when partitions are revoked: another worker may advance those services'
        templates, and a stale copy here must not overwrite them later.
        """
        for service in self._tracked:
            self.normalizer.forget(service)
        self._tracked.clear()

    async def _load(self, service: str) -> _Tracked:
        value = await self.store.load(state_key(service))
        self.normalizer.forget(service)
        if value is not None:
            try:
                self.normalizer.restore(service, decode_state(value))
            except InvalidState as exc:
                # Ids are derived from template text, so re-learning gives the same ids.
                log.error("normalize: saved templates of %r unusable (%s); re-learning them", service, exc)
        tracked = self._tracked[service] = _Tracked(saved_at=self._clock())
        return tracked

    async def _save(self, service: str, tracked: _Tracked) -> None:
        await self.store.save(state_key(service), encode_state(self.normalizer.snapshot(service)))
        tracked.unsaved = 0
        tracked.saved_at = self._clock()
