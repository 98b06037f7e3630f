"""Semantic search over the most recent events of every source.

The index keeps the ``capacity`` most recently added events (a FIFO window). Each
event belongs to a *key*, its template id, and events of one key share one vector
and one faiss row: a stream of a million lines of a few hundred templates costs a
few hundred rows. A query is embedded once and matched by cosine against the rows
(:meth:`EventSearchIndex.search_keys`), so the best templates come first, each with
its live events. Without keys every event is its own key.

Rows live in an ``IndexIDMap2`` over an exact ``IndexFlatIP``. When the last event
of a key leaves the window its row is hidden from results at once and physically
removed, in one ``remove_ids`` batch, once more than ``slack`` such rows have piled
up (a flat index shifts its data on removal, so removals are batched). Memory is
bounded by ``capacity`` events and ``capacity + slack`` rows.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from stream_processors.embed import _faiss
from stream_processors.embed.base import Embedder, Vectors
from stream_processors.embed.cache import CachedEmbedder
from stream_processors.embed.exceptions import IndexMismatch

FORMAT = "seismo.embed.search"
VERSION = 2
INDEX_FILE = "search.faiss"
META = "search.json"


class EventSearchIndex:
    """Bounded cross-source index of event vectors, grouped by key. Not thread-safe.

    ``add`` is idempotent by event id while the event is in the window; a key's vector
    is taken when the key first gets a row, later vectors for it are ignored (events of
    one template share its vector). ``search`` blocks for one query embedding
    (``embedder.embed``); everything else is in memory and fast. ``on_evict(event_id,
    key)`` is called for every event that leaves the window, after the index forgot it.
    """

    def __init__(
        self,
        embedder: Embedder,
        capacity: int = 50_000,
        slack: int | None = None,
        on_evict: Callable[[str, str], None] | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.embedder = embedder
        self.capacity = capacity
        self.slack = slack if slack is not None else max(1, capacity // 10)
        self.on_evict = on_evict
        self._index: Any = _faiss.id_map_ip(embedder.dim)
        self._window: deque[tuple[str, str]] = deque()  # (event id, key), oldest first
        self._key_of: dict[str, str] = {}  # live event -> its key
        self._members: dict[str, dict[str, None]] = {}  # key -> its live events, oldest first
        self._row: dict[str, int] = {}  # key -> faiss id, for every row still in faiss
        self._key_at: dict[int, str] = {}
        self._dead: set[int] = set()  # rows whose key has no live event
        self._next_row = 0
        self.rebuilds = 0

    def __len__(self) -> int:
        return len(self._window)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._key_of

    @property
    def rows(self) -> int:
        """Rows physically in faiss (live keys plus not yet removed dead ones)."""
        return int(self._index.ntotal)

    def event_ids(self) -> tuple[str, ...]:
        """Ids of the events in the window, oldest first."""
        return tuple(e for e, _ in self._window)

    def keys(self) -> tuple[str, ...]:
        """Keys with at least one event in the window."""
        return tuple(self._members)

    def has_key(self, key: str) -> bool:
        """Whether ``key`` has events in the window (then a new event of it needs no vector)."""
        return key in self._members

    def events_of(self, key: str) -> tuple[str, ...]:
        """The events of ``key`` in the window, oldest first."""
        return tuple(self._members.get(key, ()))

    def oldest(self) -> str | None:
        """The id of the oldest event in the window, or None when it is empty."""
        return self._window[0][0] if self._window else None

    def add(self, event_id: str, vector: Vectors, key: str | None = None) -> bool:
        """Index one event; False when it is already in the window."""
        return self.add_many([event_id], _faiss.rows(vector), None if key is None else [key]) == 1

    def add_many(self, event_ids: Sequence[str], vectors: Vectors, keys: Sequence[str] | None = None) -> int:
        """Index events in order (oldest first); returns how many were new.

        Row ``i`` of ``vectors`` is the vector of ``keys[i]`` (of ``event_ids[i]`` without
        keys); it is read only when that key has no row yet.
        """
        group = list(event_ids) if keys is None else list(keys)
        if len(group) != len(event_ids):
            raise ValueError("event_ids and keys differ in length")
        matrix = _faiss.rows(vectors) if len(event_ids) else None
        new_rows: list[int] = []
        new_at: list[int] = []
        fresh = 0
        for i, (event_id, key) in enumerate(zip(event_ids, group, strict=True)):
            if event_id in self._key_of:
                continue
            fresh += 1
            row = self._row.get(key)
            if row is None:
                row = self._next_row
                self._next_row += 1
                self._row[key] = row
                self._key_at[row] = key
                new_rows.append(row)
                new_at.append(i)
            else:
                self._dead.discard(row)  # the key is back in the window: its row is live again
            self._key_of[event_id] = key
            self._members.setdefault(key, {})[event_id] = None
            self._window.append((event_id, key))
        if new_rows and matrix is not None:
            self._index.add_with_ids(_faiss.rows(matrix[new_at]), _faiss.id_array(new_rows))
        overflow = len(self._window) - self.capacity
        if overflow > 0:
            self.evict_oldest(overflow)
        return fresh

    def evict_oldest(self, count: int = 1) -> list[str]:
        """Drop the ``count`` oldest events of the window; returns their ids, oldest first."""
        evicted: list[str] = []
        while self._window and len(evicted) < count:
            event_id, key = self._window.popleft()
            del self._key_of[event_id]
            members = self._members[key]
            del members[event_id]
            if not members:
                del self._members[key]
                self._dead.add(self._row[key])
            evicted.append(event_id)
            if self.on_evict is not None:
                self.on_evict(event_id, key)
        if len(self._dead) > self.slack:
            self._compact()
        return evicted

    def search(self, query_text: str, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` most similar events in the window as ``(event_id, cosine)``, best first."""
        return self.search_vector(self.embedder.embed([query_text])[0], k)

    def search_vector(self, vector: Vectors, k: int = 10) -> list[tuple[str, float]]:
        """Like :meth:`search` for a query vector; events of one key come newest first."""
        out: list[tuple[str, float]] = []
        for key, score in self.search_keys(vector, k):
            for event_id in reversed(self._members[key]):
                out.append((event_id, score))
                if len(out) == k:
                    return out
        return out

    def search_keys(self, vector: Vectors, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` keys with events in the window most similar to ``vector``, as
        ``(key, cosine)``, best first (ties in faiss's order)."""
        want = min(self.rows, k + len(self._dead))
        if want <= 0 or k <= 0:
            return []
        scores, hits = self._index.search(_faiss.rows(vector), want)
        out: list[tuple[str, float]] = []
        for score, hit in zip(scores[0], hits[0], strict=True):
            row = int(hit)
            if row >= 0 and row not in self._dead:
                out.append((self._key_at[row], float(score)))
                if len(out) == k:
                    break
        return out

    def _compact(self) -> None:
        """Remove the rows of keys without live events from faiss, in one batch."""
        if not self._dead:
            return
        self._index.remove_ids(_faiss.id_array(sorted(self._dead)))
        for row in self._dead:
            del self._row[self._key_at.pop(row)]
        self._dead.clear()
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
            "events": [[e, k] for e, k in self._window],
            "rows": self._row,
        }
        _faiss.write_json(meta, folder / META)

    @classmethod
    def exists(cls, folder: Path) -> bool:
        return (folder / META).is_file() and (folder / INDEX_FILE).is_file()

    @classmethod
    def load(cls, folder: Path, embedder: Embedder, capacity: int = 50_000) -> EventSearchIndex:
        """The window saved under ``folder`` (its newest ``capacity`` events).

        Raises :class:`IndexMismatch` for another model or format, ``FileNotFoundError``
        when absent.
        """
        import numpy as np

        data = _faiss.read_json(folder / META)
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            raise IndexMismatch(f"{folder / META} is not a search index of version {VERSION}")
        if data.get("model_version") != embedder.model_version:
            raise IndexMismatch(f"{folder} holds vectors of {data.get('model_version')}")
        stored = _faiss.read_index(folder / INDEX_FILE)
        rows = {str(k): int(r) for k, r in data["rows"].items()}
        events = [(str(e), str(k)) for e, k in data["events"]][-capacity:]
        if stored.ntotal != len(rows) or stored.d != embedder.dim:
            raise IndexMismatch(f"{folder / INDEX_FILE} does not match its {len(rows)} rows")
        index = cls(embedder, capacity)
        if events:
            try:
                by_key = {k: stored.reconstruct(rows[k]) for k in {k for _, k in events}}
            except (KeyError, RuntimeError) as exc:
                raise IndexMismatch(f"{folder / INDEX_FILE} lacks the row of a saved event") from exc
            vectors = np.stack([by_key[k] for _, k in events])
            index.add_many([e for e, _ in events], vectors, [k for _, k in events])
        return index

    @classmethod
    def rebuild_from(
        cls, cache: CachedEmbedder, events: Iterable[tuple[str, str, str]], capacity: int = 50_000
    ) -> EventSearchIndex:
        """A new index of ``(event_id, template_id, template_text)``, oldest first, keyed by
        template id, with vectors from ``cache`` (only never-embedded templates reach the
        engine, each once)."""
        triples = list(events)[-capacity:]
        index = cls(cache, capacity)
        if triples:
            vectors = cache.embed_keyed([t[1] for t in triples], [t[2] for t in triples])
            index.add_many([t[0] for t in triples], vectors, [t[1] for t in triples])
        return index
