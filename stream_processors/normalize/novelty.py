"""Template novelty for the normalize agent: how unlike its service's other templates a template is.

``novelty = 1 - max cosine`` between the event's template embedding and the
service's *other* known templates (1.0 for a service's first template), from
a per-service FAISS index (:class:`~stream_processors.embed.NoveltyIndex`).
Embeddings are computed once per template id and cached in-process and in
Redis (:class:`~stream_processors.embed.CachedEmbedder`), so a restarted
worker recomputes nothing: when it first sees a service again it re-seeds that
service's index from the restored template miner with cached vectors.

Novelty is informational (the scorer uses it); correlation does not depend on
it, so it may differ slightly between a replay and an uninterrupted run.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from schemas.models import Event, EventKind

if TYPE_CHECKING:
    from seismo.settings import Settings
    from stream_processors.embed import CachedEmbedder, NoveltyIndex
    from stream_processors.normalize.normalizer import Normalizer

log = logging.getLogger(__name__)

SCORED_KINDS = frozenset({EventKind.LOG, EventKind.EVENT, EventKind.ERROR, EventKind.ALERT})


class NoveltyStep:
    """Adds ``novelty`` to enriched events.  One per worker; not thread-safe.

    :meth:`score` runs the embedding engine (CPU-bound) and Redis in a thread only
    for templates this process has no vector for yet; known templates cost one
    small FAISS search.
    """

    def __init__(self, cache: CachedEmbedder, index: NoveltyIndex, normalizer: Normalizer) -> None:
        self.cache = cache
        self.index = index
        self.normalizer = normalizer
        self._vectors: dict[str, Any] = {}
        self._seeded: set[str] = set()
        self._seeds: dict[str, list[tuple[str, str]]] = {}  # restored services' templates to index
        self._memo: dict[tuple[str, str], tuple[int, float]] = {}  # -> (service's template count, novelty)

    def restored(self, service: str) -> None:
        """``service``'s miner was just restored: index its templates at the next :meth:`prepare`."""
        clusters = self.normalizer.miner(service).clusters
        self._seeds[service] = [(cid, c.text) for cid, c in clusters.items()]
        self._seeded.discard(service)

    def prepare(self, events: list[dict[str, Any]]) -> None:
        """Get, in one engine call, every vector the novelty of ``events`` will need: templates of
        restored services (then indexed) and templates this process has no vector for yet.

        Batching matters: the engine's cost is mostly per call, and a backlog brings many new
        templates at once.  Raises EmbedError when the engine fails.
        """
        wanted: dict[str, str] = {}
        for pairs in self._seeds.values():
            wanted.update((cid, text) for cid, text in pairs if cid not in self._vectors)
        for e in events:
            tid, template = e["template_id"], e["template"]
            if e["kind"] in SCORED_KINDS and tid and template is not None and tid not in self._vectors:
                wanted.setdefault(tid, template)
        if wanted:
            ids = list(wanted)
            for cid, vec in zip(ids, self.cache.embed_keyed(ids, [wanted[i] for i in ids]), strict=True):
                self._vectors[cid] = vec
        for service, pairs in self._seeds.items():
            known = self.index.templates(service)
            for cid, _ in pairs:
                if cid not in known:
                    self.index.add(service, cid, self._vectors[cid])
            self._seeded.add(service)
        self._seeds.clear()

    def _seed(self, service: str) -> None:
        """Index every template the (restored) miner knows, with cached or computed vectors."""
        clusters = self.normalizer.miner(service).clusters
        ids = [cid for cid in clusters if cid not in self.index.templates(service)]
        if ids:
            vectors = self.cache.embed_keyed(ids, [clusters[cid].text for cid in ids])
            for cid, vec in zip(ids, vectors, strict=True):
                self._vectors[cid] = vec
                self.index.add(service, cid, vec)
        self._seeded.add(service)

    def _vector(self, template_id: str, text: str) -> Any:
        vec = self._vectors.get(template_id)
        if vec is None:
            vec = self._vectors[template_id] = self.cache.embed_keyed([template_id], [text])[0]
        return vec

    def value(self, record: dict[str, Any]) -> float | None:
        """The novelty of the template of an Event's Avro ``record`` (None for metrics and
        untemplated kinds); the template joins its service's index.

        A template's novelty only changes when its service learns another template, so it is
        remembered per (service, template) with the service's template count: most events cost
        two dictionary look-ups, not a search.
        """
        return self._value(record["service"], record["kind"], record["template_id"], record["template"])

    def _value(self, service: str, kind: str, tid: str | None, template: str | None) -> float | None:
        if kind not in SCORED_KINDS or not tid or template is None:
            return None
        if service not in self._seeded:
            self._seed(service)
        known = self.index.size(service)
        memo = self._memo.get((service, tid))
        if memo is not None and memo[0] == known:
            return memo[1]
        novelty = self.index.observe(service, tid, self._vector(tid, template))
        # 1 - cosine lies in [0, 2]; orthogonal or opposite templates are both simply "new".
        value = round(min(1.0, novelty), 6)
        self._memo[(service, tid)] = (self.index.size(service), value)
        return value

    def score_blocking(self, event: Event) -> Event:
        """``event`` with ``novelty`` set (unchanged for metrics and untemplated kinds)."""
        value = self._value(event.service, event.kind, event.template_id, event.template)
        return event if value is None else event.model_copy(update={"novelty": value})

    async def score(self, event: Event) -> Event:
        """``event`` with ``novelty`` set (unchanged for metrics and untemplated kinds)."""
        if event.service in self._seeded and event.template_id in self._vectors:
            return self.score_blocking(event)
        return await asyncio.to_thread(self.score_blocking, event)

    def forget_all(self) -> None:
        """Re-seed services when next seen (partitions moved; another worker may own them)."""
        self._seeded.clear()
        self._seeds.clear()
        self._memo.clear()


def novelty_step(settings: Settings, normalizer: Normalizer) -> NoveltyStep | None:
    """The configured novelty step, or None when ``SEISMO_EMBEDDER=off``."""
    if settings.embedder == "off":
        return None
    from stream_processors.embed import NoveltyIndex
    from stream_processors.embed.engine import configured_cache

    cache = configured_cache(settings)
    return NoveltyStep(cache, NoveltyIndex(cache.dim, cache.model_version), normalizer)
