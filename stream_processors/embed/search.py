"""Semantic search over the most recent events of every source.

Each event is indexed with its template's vector (already cached, so indexing costs
no model call); a query is embedded once and matched by cosine. The index keeps the
``capacity`` most recent events: older ones are hidden from results at once and
physically dropped by a rebuild every ``slack`` evictions (a flat index cannot
delete cheaply, and a rebuild of a few thousand rows takes milliseconds).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from stream_processors.embed import _faiss
from stream_processors.embed.base import Embedder, Vectors
from stream_processors.embed.cache import CachedEmbedder
from stream_processors.embed.exceptions import IndexMismatch

FORMAT = "seismo.embed.search"
VERSION = 1
INDEX_FILE = "search.faiss"
META = "search.json"


class EventSearchIndex:
    """Bounded cross-source index of event vectors. Not thread-safe.

    ``add`` is idempotent by event id while the event is in the window;
    ``search`` blocks for one query embedding (``embedder.embed``).
    """

    def __init__(self, embedder: Embedder, capacity: int = 50_000, slack: int | None = None) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.embedder = embedder
        self.capacity = capacity
        self.slack = slack if slack is not None else max(1, capacity // 10)
        self._index: Any = _faiss.flat_ip(embedder.dim)
        self._ids: list[str] = []
        self._live: dict[str, int] = {}
        self.rebuilds = 0

    def __len__(self) -> int:
        return min(len(self._ids), self.capacity)

    def event_ids(self) -> tuple[str, ...]:
        """Ids of the events in the window, oldest first."""
        return tuple(self._ids[self._stale() :])

    def add(self, event_id: str, vector: Vectors) -> bool:
        """Index one event; False when it is already in the window."""
        return self.add_many([event_id], _faiss.rows(vector)) == 1

    def add_many(self, event_ids: list[str], vectors: Vectors) -> int:
        """Index events in order (oldest first); returns how many were new."""
        first: dict[str, int] = {}
        for i, e in enumerate(event_ids):
            if e not in self._live:
                first.setdefault(e, i)
        fresh = [(i, e) for e, i in first.items()]
        if not fresh:
            return 0
        matrix = _faiss.rows(vectors)[[i for i, _ in fresh]]
        self._index.add(_faiss.rows(matrix))
        for _, event_id in fresh:
            self._live[event_id] = len(self._ids)
            self._ids.append(event_id)
        for event_id in self._ids[max(0, self._stale() - len(fresh)) : self._stale()]:
            self._live.pop(event_id, None)
        if len(self._ids) > self.capacity + self.slack:
            self._compact()
        return len(fresh)

    def search(self, query_text: str, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` most similar events in the window as ``(event_id, cosine)``, best first."""
        return self.search_vector(self.embedder.embed([query_text])[0], k)

    def search_vector(self, vector: Vectors, k: int = 10) -> list[tuple[str, float]]:
        stale = self._stale()
        want = min(len(self._ids), k + stale)
        if want <= 0 or k <= 0:
            return []
        scores, hits = self._index.search(_faiss.rows(vector), want)
        out: list[tuple[str, float]] = []
        for score, hit in zip(scores[0], hits[0], strict=True):
            if hit >= stale:
                out.append((self._ids[int(hit)], float(score)))
                if len(out) == k:
                    break
        return out

    def _stale(self) -> int:
        return max(0, len(self._ids) - self.capacity)

    def _compact(self) -> None:
        stale = self._stale()
        if stale == 0:
            return
        kept = self._index.reconstruct_n(stale, len(self._ids) - stale)
        self._index = _faiss.flat_ip(self.embedder.dim, kept)
        self._ids = self._ids[stale:]
        self._live = {e: i for i, e in enumerate(self._ids)}
        self.rebuilds += 1

    def save(self, folder: Path) -> None:
        """Write the window (``search.faiss`` + ``search.json``) under ``folder``. Blocks on disk."""
        folder.mkdir(parents=True, exist_ok=True)
        self._compact()
        _faiss.write_index(self._index, folder / INDEX_FILE)
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "model_version": self.embedder.model_version,
            "dim": self.embedder.dim,
            "ids": self._ids,
        }
        _faiss.write_json(meta, folder / META)

    @classmethod
    def exists(cls, folder: Path) -> bool:
        return (folder / META).is_file() and (folder / INDEX_FILE).is_file()

    @classmethod
    def load(cls, folder: Path, embedder: Embedder, capacity: int = 50_000) -> EventSearchIndex:
        """The window saved under ``folder`` (its newest ``capacity`` events).

        Raises :class:`IndexMismatch` for another model, ``FileNotFoundError`` when absent.
        """
        data = _faiss.read_json(folder / META)
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            raise IndexMismatch(f"{folder / META} is not a search index of version {VERSION}")
        if data.get("model_version") != embedder.model_version:
            raise IndexMismatch(f"{folder} holds vectors of {data.get('model_version')}")
        stored = _faiss.read_index(folder / INDEX_FILE)
        ids = [str(i) for i in data["ids"]]
        if stored.ntotal != len(ids) or stored.d != embedder.dim:
            raise IndexMismatch(f"{folder / INDEX_FILE} does not match its {len(ids)} ids")
        index = cls(embedder, capacity)
        if ids:
            index.add_many(ids, stored.reconstruct_n(0, len(ids)))
        index._compact()
        return index

    @classmethod
    def rebuild_from(
        cls, cache: CachedEmbedder, events: Iterable[tuple[str, str, str]], capacity: int = 50_000
    ) -> EventSearchIndex:
        """A new index of ``(event_id, template_id, template_text)``, oldest first, with
        vectors from ``cache`` (only never-embedded templates reach the engine)."""
        triples = list(events)[-capacity:]
        index = cls(cache, capacity)
        if triples:
            vectors = cache.embed_keyed([t[1] for t in triples], [t[2] for t in triples])
            index.add_many([t[0] for t in triples], vectors)
        return index
