"""Online template mining with a fixed-depth prefix tree and stable template ids.

Lines are masked (:mod:`masking`), split on spaces and routed to a leaf keyed by token
count and first token (a first token holding a digit or placeholder routes to ``<*>``).
Within a leaf the line joins the most similar template when enough tokens agree;
otherwise it starts a new template. Joining may turn disagreeing tokens into
(partial) wildcards; the template keeps its id. Ids derive from a BLAKE2 hash of the
template's first text, so the same stream always yields the same ids, in any process.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import Enum
from typing import Any, NamedTuple

from stream_processors.normalize.templating import state
from stream_processors.normalize.templating.masking import MaskedLine, Masker, Param, default_masker
from stream_processors.normalize.templating.tokens import (
    WILDCARD,
    Wild,
    conflicting,
    covers,
    extract,
    generalize,
    route,
)


class Change(Enum):
    """What adding a line did to the template store."""

    NEW = "new"
    GENERALIZED = "generalized"
    MATCHED = "matched"


class MatchResult(NamedTuple):
    """The template a line belongs to, after the line was added.

    ``params`` lists the masked values in line order, then the values that fill the
    template's wildcards (tokens that were already a placeholder are not repeated).
    A NamedTuple (immutable, typed) because one is built per line on the hot path.
    """

    template_id: str
    template: str
    change: Change
    params: tuple[Param, ...]

    @property
    def is_new(self) -> bool:
        return self.change is Change.NEW


@dataclass(frozen=True, slots=True)
class MinerConfig:
    """Hyper-parameters; the defaults are the ones benchmarked on Loghub."""

    similarity: float = 0.5
    cache_size: int = 50_000


class Cluster:
    """One template. Mutable, owned by its :class:`TemplateMiner`; read, don't modify."""

    __slots__ = ("id", "key", "size", "text", "tokens", "wild", "wild_positions")

    def __init__(self, cid: str, key: str, tokens: list[str], wild: list[Wild | None]) -> None:
        self.id = cid
        self.key = key
        self.tokens = tokens
        self.wild = wild
        self.size = 0
        self.text = " ".join(tokens)
        self.wild_positions = tuple(i for i, w in enumerate(wild) if w is not None)


def template_id(text: str, taken: dict[str, Cluster]) -> str:
    """Deterministic id of a template first seen as ``text``; unique among ``taken``."""
    salt = 0
    while True:
        data = text if salt == 0 else f"{text}\x00{salt}"
        cid = "T" + hashlib.blake2b(data.encode("utf-8"), digest_size=6).hexdigest()
        if cid not in taken:
            return cid
        salt += 1


class TemplateMiner:
    """Online miner for one service's log stream. Not thread-safe; one per partition.

    ``add`` never blocks and never raises on input text. ``save_state`` /
    ``load_state`` snapshot and restore the templates (caches are rebuilt lazily).
    """

    def __init__(self, config: MinerConfig | None = None, masker: Masker | None = None) -> None:
        self.config = config or MinerConfig()
        self.masker = masker or default_masker()
        self.clusters: dict[str, Cluster] = {}
        self._leaves: dict[tuple[int, str], list[Cluster]] = {}
        self._versions: dict[tuple[int, str], int] = {}
        self._cache: dict[str, tuple[Cluster, tuple[int, str], int]] = {}

    def save_state(self) -> bytes:
        """Serialise every template (ids, text, wildcards, sizes) to bytes. Pure."""
        return state.encode(state.snapshot(self))

    def load_state(self, blob: bytes) -> None:
        """Replace this miner's templates with those of :meth:`save_state` output.

        The miner then continues exactly as the saved one would have. Raises
        :class:`~stream_processors.normalize.templating.exceptions.InvalidState` (miner
        unchanged) on corrupt bytes or a snapshot taken with another similarity.
        """
        self.restore(state.decode(blob))

    def restore(self, data: dict[str, Any]) -> None:
        """Like :meth:`load_state` from an already decoded snapshot dict."""
        clusters = state.restore(self, data)
        self.clusters = {}
        self._leaves = {}
        self._versions = {}
        self._cache = {}
        for cluster in clusters:
            key = (len(cluster.tokens), cluster.key)
            self.clusters[cluster.id] = cluster
            self._leaves.setdefault(key, []).append(cluster)
            self._versions[key] = 0

    def add(self, line: str) -> MatchResult:
        """Mask ``line``, assign it to a template (creating or widening one) and return it."""
        masked = self.masker.mask(line)
        return self.add_masked(masked)

    def add_masked(self, masked: MaskedLine) -> MatchResult:
        """Like :meth:`add` for a line already masked by a compatible :class:`Masker`."""
        text = masked.text
        hit = self._cache.get(text)
        if hit is not None and self._versions[hit[1]] == hit[2]:
            hit[0].size += 1
            return self._result(hit[0], Change.MATCHED, masked, None)
        tokens = list(masked.tokens) or [""]
        key = (len(tokens), route(tokens[0]) + " " + (route(tokens[1]) if len(tokens) > 1 else ""))
        leaf = self._leaves.get(key)
        if leaf is None:
            leaf = self._leaves[key] = []
            self._versions[key] = 0
        found = self._best(leaf, tokens)
        if found is None:
            cluster = self._create(key, tokens)
            leaf.append(cluster)
            change = Change.NEW
        else:
            cluster = found
            change = self._merge(cluster, tokens)
        if change is not Change.MATCHED:
            self._versions[key] += 1
        if len(self._cache) >= self.config.cache_size:
            self._cache.clear()
        self._cache[text] = (cluster, key, self._versions[key])
        cluster.size += 1
        return self._result(cluster, change, masked, tokens)

    def _best(self, leaf: list[Cluster], tokens: list[str]) -> Cluster | None:
        best: Cluster | None = None
        best_score = -1.0
        n = len(tokens)
        for cluster in leaf:
            same = 0
            var = 0
            for t, w, x in zip(cluster.tokens, cluster.wild, tokens, strict=True):
                if t == x:
                    same += 1
                elif w is not None:
                    if covers(w, x):
                        var += 1
                elif conflicting(t, x):
                    same = -n
                    break
            score = (same + var) / n
            if score > best_score:
                best, best_score = cluster, score
        if best is None or best_score < self.config.similarity:
            return None
        return best

    def _create(self, key: tuple[int, str], tokens: list[str]) -> Cluster:
        cid = template_id(" ".join(tokens), self.clusters)
        cluster = Cluster(cid, key[1], list(tokens), [None] * len(tokens))
        self.clusters[cid] = cluster
        return cluster

    def _merge(self, cluster: Cluster, tokens: list[str]) -> Change:
        changed = False
        for i, (t, w, x) in enumerate(zip(cluster.tokens, cluster.wild, tokens, strict=True)):
            if t == x or (w is not None and covers(w, x)):
                continue
            cluster.tokens[i], cluster.wild[i] = generalize(t, w, x)
            changed = True
        if not changed:
            return Change.MATCHED
        cluster.text = " ".join(cluster.tokens)
        cluster.wild_positions = tuple(i for i, w in enumerate(cluster.wild) if w is not None)
        return Change.GENERALIZED

    def _result(
        self, cluster: Cluster, change: Change, masked: MaskedLine, tokens: list[str] | None
    ) -> MatchResult:
        params = masked.params
        if cluster.wild_positions:
            if tokens is None:
                tokens = list(masked.tokens)
            extra = []
            for i in cluster.wild_positions:
                wild = cluster.wild[i]
                value = extract(wild, tokens[i]) if wild is not None else tokens[i]
                if not (value.startswith("<") and value.endswith(">")):
                    extra.append(Param(WILDCARD, value))
            params = params + tuple(extra)
        return MatchResult(cluster.id, cluster.text, change, params)
