"""The normalize step with durable templates: a :class:`Normalizer` behind a StateStore.

:class:`DurableTemplates` is what the normalize adapter calls. Before the first event of
a service the runtime loads that service's miner from the
:class:`~stream_processors.runtime.state.StateStore` (key ``normalize:{service}``, value
``{"format", "version", "miner": base64 snapshot}``), so a restarted or rebalanced worker
keeps its template ids.

When a service's miner is saved (the order is what keeps ids meaningful):

* **at the checkpoint after an event created or widened a template** (``NEW`` /
  ``GENERALIZED``): after the enriched events were acknowledged and *before* the input
  offsets are committed. A crash before that commit replays the same lines, per service
  in the same order, into the last saved miner, and mining is deterministic, so the
  replay re-creates the same templates with the same ids.
* otherwise (only ``MATCHED`` events: just template sizes move) at most every
  ``every_events`` events or ``every_s`` seconds, whichever comes first.

No published template can be missing after a restart: either its event's offset was
committed (then the miner that made it was saved first) or the event is replayed. Ids
are a hash of the text a template was first seen as, so a template that is re-learned
from scratch gets its old id back, and no id ever names another template.
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
    changed: bool = False  # a template was created or widened since the last save
    unsaved: int = 0  # MATCHED events since the last save
    saved_at: float = 0.0


class DurableTemplates:
    """A :class:`Normalizer` whose per-service miners are loaded from and saved to a StateStore.

    Synchronous and I/O-free: the runtime loads the values :meth:`missing` names and hands
    them to :meth:`restore`; at each checkpoint it saves :meth:`dirty_states` after every
    output was acknowledged and before the input offsets are committed.  One per worker
    process; not re-entrant.
    """

    def __init__(
        self,
        normalizer: Normalizer,
        policy: CheckpointPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.normalizer = normalizer
        self.policy = policy or CheckpointPolicy()
        self._clock = clock
        self._tracked: dict[str, _Tracked] = {}

    def loaded(self, service: str) -> bool:
        return service in self._tracked

    def restore(self, service: str, value: dict[str, Any] | None) -> None:
        """Take ``service``'s saved value (None: it has none yet) as its current miner."""
        self.normalizer.forget(service)
        if value is not None:
            try:
                self.normalizer.restore(service, decode_state(value))
            except InvalidState as exc:
                # Ids are derived from template text, so re-learning gives the same ids.
                log.error("normalize: saved templates of %r unusable (%s); re-learning them", service, exc)
        self._tracked[service] = _Tracked(saved_at=self._clock())

    def process(self, event: Event) -> Normalized:
        """Normalize ``event`` (its service's miner starts empty if it was never restored)."""
        tracked = self._tracked_of(event.service)
        result = self.normalizer.process(event)
        self._count(tracked, result.change)
        return result

    def process_record(self, record: dict[str, Any]) -> None:
        """:meth:`process` on an Event's Avro record, changed in place (the step's hot path)."""
        tracked = self._tracked_of(record["service"])
        self._count(tracked, self.normalizer.process_record(record))

    def _tracked_of(self, service: str) -> _Tracked:
        tracked = self._tracked.get(service)
        if tracked is None:
            self.restore(service, None)
            tracked = self._tracked[service]
        return tracked

    @staticmethod
    def _count(tracked: _Tracked, change: Change | None) -> None:
        if change is Change.MATCHED:
            tracked.unsaved += 1
        elif change is not None:
            tracked.changed = True

    def dirty_states(self) -> dict[str, dict[str, Any]]:
        """StateStore values of services with a new or widened template, and of services whose
        only news are matches once the policy says so; each is then counted as saved."""
        now = self._clock()
        out: dict[str, dict[str, Any]] = {}
        for service, tracked in self._tracked.items():
            due = tracked.unsaved and (
                tracked.unsaved >= self.policy.every_events or now - tracked.saved_at >= self.policy.every_s
            )
            if tracked.changed or due:
                out[state_key(service)] = encode_state(self.normalizer.snapshot(service))
                tracked.changed, tracked.unsaved, tracked.saved_at = False, 0, now
        return out

    def forget_all(self) -> None:
        """Drop every service from memory; each is re-loaded from the store when next seen.

        Call when partitions are revoked (after a checkpoint): another worker may advance
        those services' templates, and a stale copy here must not overwrite them later.
        """
        for service in self._tracked:
            self.normalizer.forget(service)
        self._tracked.clear()
