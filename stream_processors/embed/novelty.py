"""How new a template is for its service: 1 - max cosine to the service's other templates.

One ``IndexFlatIP`` per service holds the unit vectors of the templates seen so far
(exact search; a service has hundreds of templates, not millions). Adding a
template is idempotent by id. ``save``/``load`` persist everything under a folder
(one ``.faiss`` file per service and ``novelty.json`` with the ids); when the files
are missing, :meth:`NoveltyIndex.rebuild_from` refills it from cached vectors.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stream_processors.embed import _faiss
from stream_processors.embed.base import Vectors
from stream_processors.embed.cache import CachedEmbedder
from stream_processors.embed.exceptions import IndexMismatch

FORMAT = "seismo.embed.novelty"
VERSION = 1
META = "novelty.json"

if TYPE_CHECKING:
    from stream_processors.normalize.templating import TemplateRegistry


class _Service:
    __slots__ = ("ids", "index", "positions")

    def __init__(self, dim: int) -> None:
        self.index: Any = _faiss.flat_ip(dim)
        self.ids: list[str] = []
        self.positions: dict[str, int] = {}


class NoveltyIndex:
    """Per-service template vectors. Not thread-safe; every call is in-memory and fast."""

    def __init__(self, dim: int, model_version: str) -> None:
        self.dim = dim
        self.model_version = model_version
        self._services: dict[str, _Service] = {}

    def __len__(self) -> int:
        return sum(len(s.ids) for s in self._services.values())

    def services(self) -> tuple[str, ...]:
        return tuple(sorted(self._services))

    def templates(self, service: str) -> tuple[str, ...]:
        """Ids of the templates known for ``service``, in the order they were added."""
        known = self._services.get(service)
        return tuple(known.ids) if known else ()

    def size(self, service: str) -> int:
        """How many templates are known for ``service`` (grows by :meth:`add` only)."""
        known = self._services.get(service)
        return len(known.ids) if known else 0

    def add(self, service: str, template_id: str, vector: Vectors) -> bool:
        """Remember ``template_id``'s vector for ``service``; False when already known."""
        known = self._services.get(service)
        if known is None:
            known = self._services[service] = _Service(self.dim)
        if template_id in known.positions:
            return False
        known.index.add(_faiss.rows(vector))
        known.positions[template_id] = len(known.ids)
        known.ids.append(template_id)
        return True

    def novelty(self, service: str, template_id: str, vector: Vectors) -> float:
        """``1 - max cosine`` between ``vector`` and the service's *other* templates.

        1.0 when the service knows no other template; 0.0 for an exact duplicate of
        another template. Does not add the template (see :meth:`observe`).
        """
        known = self._services.get(service)
        if known is None or not known.ids:
            return 1.0
        k = min(2, len(known.ids))
        scores, hits = known.index.search(_faiss.rows(vector), k)
        for score, hit in zip(scores[0], hits[0], strict=True):
            if hit >= 0 and known.ids[int(hit)] != template_id:
                return max(0.0, 1.0 - float(score))
        return 1.0

    def observe(self, service: str, template_id: str, vector: Vectors) -> float:
        """:meth:`novelty` of the template, then :meth:`add` it."""
        score = self.novelty(service, template_id, vector)
        self.add(service, template_id, vector)
        return score

    def save(self, folder: Path) -> None:
        """Write every service's index and the id lists under ``folder`` (created). Blocks on disk."""
        folder.mkdir(parents=True, exist_ok=True)
        files: dict[str, dict[str, Any]] = {}
        for number, name in enumerate(sorted(self._services)):
            known = self._services[name]
            file = f"novelty-{number}.faiss"
            _faiss.write_index(known.index, folder / file)
            files[name] = {"file": file, "ids": known.ids}
        meta = {"format": FORMAT, "version": VERSION, "model_version": self.model_version, "dim": self.dim}
        _faiss.write_json({**meta, "services": files}, folder / META)

    @classmethod
    def exists(cls, folder: Path) -> bool:
        return (folder / META).is_file()

    @classmethod
    def load(cls, folder: Path, model_version: str) -> NoveltyIndex:
        """The index saved under ``folder``.

        Raises :class:`IndexMismatch` when it was saved for another model, and
        ``FileNotFoundError`` when nothing was saved there.
        """
        data = _faiss.read_json(folder / META)
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            raise IndexMismatch(f"{folder / META} is not a novelty index of version {VERSION}")
        if data.get("model_version") != model_version:
            raise IndexMismatch(f"{folder} holds vectors of {data.get('model_version')}, not {model_version}")
        index = cls(int(data["dim"]), model_version)
        for name, entry in data["services"].items():
            known = _Service(index.dim)
            known.index = _faiss.read_index(folder / entry["file"])
            known.ids = [str(i) for i in entry["ids"]]
            if known.index.ntotal != len(known.ids) or known.index.d != index.dim:
                raise IndexMismatch(f"{folder / entry['file']} does not match its {len(known.ids)} ids")
            known.positions = {tid: i for i, tid in enumerate(known.ids)}
            index._services[str(name)] = known
        return index

    @classmethod
    def rebuild_from(cls, cache: CachedEmbedder, templates: Iterable[tuple[str, str, str]]) -> NoveltyIndex:
        """A new index of ``(service, template_id, text)`` triples, vectors taken from ``cache``.

        Vectors already cached (LRU or Redis) are reused; only templates never
        embedded reach the engine, in one batch.
        """
        triples = list(templates)
        index = cls(cache.dim, cache.model_version)
        vectors = cache.embed_keyed([t[1] for t in triples], [t[2] for t in triples])
        for (service, template_id, _), vector in zip(triples, vectors, strict=True):
            index.add(service, template_id, vector)
        return index

    @classmethod
    def load_or_rebuild(
        cls, folder: Path, cache: CachedEmbedder, templates: Iterable[tuple[str, str, str]]
    ) -> NoveltyIndex:
        """:meth:`load` when files for this model exist, else :meth:`rebuild_from` (then adds any
        template in ``templates`` the saved files lack)."""
        if cls.exists(folder):
            try:
                index = cls.load(folder, cache.model_version)
            except IndexMismatch:
                return cls.rebuild_from(cache, templates)
            triples = [t for t in templates if t[1] not in index._positions(t[0])]
            if triples:
                vectors = cache.embed_keyed([t[1] for t in triples], [t[2] for t in triples])
                for (service, template_id, _), vector in zip(triples, vectors, strict=True):
                    index.add(service, template_id, vector)
            return index
        return cls.rebuild_from(cache, templates)

    def _positions(self, service: str) -> dict[str, int]:
        known = self._services.get(service)
        return known.positions if known else {}


def registry_templates(registry: TemplateRegistry) -> list[tuple[str, str, str]]:
    """``(service, template_id, text)`` of every template of a
    :class:`~stream_processors.normalize.templating.TemplateRegistry`,
    for :meth:`NoveltyIndex.rebuild_from`."""
    out: list[tuple[str, str, str]] = []
    for service in registry.services():
        for cid, cluster in registry.miner(service).clusters.items():
            out.append((service, cid, cluster.text))
    return out
