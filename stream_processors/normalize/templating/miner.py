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
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, NamedTuple

from stream_processors.normalize.templating import state
from stream_processors.normalize.templating.align import alike, anchored, skeleton
from stream_processors.normalize.templating.groups import Cluster, Family, Templates, differences, link
from stream_processors.normalize.templating.masking import MaskedLine, Masker, Param, default_masker
from stream_processors.normalize.templating.tokens import (
    WILDCARD,
    Clash,
    clash,
    covers,
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


_MATCHED = Change.MATCHED


@dataclass(frozen=True, slots=True)
class MinerConfig:
    """Hyper-parameters; the defaults are chosen by leave-one-system-out on Loghub.

    ``similarity``: the share of a template's tokens a line must agree with to join it.
    ``value_after``: how many distinct plain words a template position must show before
    they are read as values of one field (one template with a wildcard) rather than
    words naming different events (one template each); 2 merges at the first.
    ``join_similarity``: templates whose values span different token counts (or differ
    only in a unit word) are joined into one when their skeletons agree on this share
    of their tokens and could be merged on the rest (:func:`align.alike`); None: never.
    ``merge_live``: whether two templates that both exist already may become one (the
    younger id then resolves to the older). Off, a line's template is fixed once it was
    reported -- what a stream that publishes ids needs -- and only a new template joins
    an older one; on, as ``seismo templates`` runs, every line ends in its final group.
    """

    similarity: float = 0.6
    cache_size: int = 50_000
    value_after: int = 2
    join_similarity: float | None = 0.8
    merge_live: bool = False


def template_id(text: str, taken: dict[str, Cluster]) -> str:
    """Deterministic id of a template first seen as ``text``; unique among ``taken``."""
    salt = 0
    while True:
        data = text if salt == 0 else f"{text}\x00{salt}"
        cid = "T" + hashlib.blake2b(data.encode("utf-8"), digest_size=6).hexdigest()
        if cid not in taken:
            return cid
        salt += 1


_Leaf = tuple[int, str]


class TemplateMiner:
    """Online miner for one service's log stream. Not thread-safe; one per partition.

    ``add`` never blocks and never raises on input text. ``save_state`` /
    ``load_state`` snapshot and restore the templates (caches are rebuilt lazily).
    ``clusters`` maps each live template id to its root shape (see :class:`Templates`:
    the id of a template merged into an older one still resolves).
    """

    def __init__(self, config: MinerConfig | None = None, masker: Masker | None = None) -> None:
        self.config = config or MinerConfig()
        self.masker = masker or default_masker()
        self._shapes: dict[str, Cluster] = {}
        self.clusters = Templates(self._shapes)
        self._leaves: dict[_Leaf, list[Cluster]] = {}
        self._versions: dict[_Leaf, int] = {}
        self._cache: dict[str, tuple[Cluster, _Leaf, int]] = {}
        self._skeletons: dict[tuple[str, int], list[Cluster]] = {}

    def save_state(self) -> bytes:
        """Serialise every template (ids, text, wildcards, sizes, groups) to bytes. Pure."""
        return state.encode(state.snapshot(self))

    def load_state(self, blob: bytes) -> None:
        """Replace this miner's templates with those of :meth:`save_state` output.

        The miner then continues exactly as the saved one would have (a version-1
        snapshot loads as templates of one shape each). Raises
        :class:`~stream_processors.normalize.templating.exceptions.InvalidState` (miner
        unchanged) on corrupt bytes or a snapshot taken with another configuration.
        """
        self.restore(state.decode(blob))

    def shapes(self) -> list[Cluster]:
        """Every shape, live or joined into an older template, in creation order."""
        return list(self._shapes.values())

    def restore(self, data: dict[str, Any]) -> None:
        """Like :meth:`load_state` from an already decoded snapshot dict."""
        shapes = state.restore(self, data)
        self._shapes = {}
        self.clusters = Templates(self._shapes)
        self._leaves = {}
        self._versions = {}
        self._cache = {}
        self._skeletons = {}
        for shape in shapes:
            key = (len(shape.tokens), shape.key)
            self._shapes[shape.id] = shape
            if shape.root is shape:
                self.clusters[shape.id] = shape
            self._leaves.setdefault(key, []).append(shape)
            self._versions[key] = 0
            self._index(shape, join=False)  # groups come from the snapshot

    def add(self, line: str) -> MatchResult:
        """Mask ``line``, assign it to a template (creating or widening one) and return it."""
        masked = self.masker.mask(line)
        return self.add_masked(masked)

    def add_masked(self, masked: MaskedLine) -> MatchResult:
        """Like :meth:`add` for a line already masked by a compatible :class:`Masker`."""
        text = masked.text
        hit = self._cache.get(text)
        if hit is not None and self._versions[hit[1]] == hit[2]:
            cluster = hit[0]
            cluster.size += 1
            if not cluster.wild_positions:  # the common case, inlined
                root = cluster.root
                return MatchResult(root.id, root.text, _MATCHED, masked.params)
            return self._result(cluster, _MATCHED, masked, None)
        tokens = list(masked.tokens) or [""]
        key = (len(tokens), route(tokens[0]) + " " + (route(tokens[1]) if len(tokens) > 1 else ""))
        leaf = self._leaves.get(key)
        if leaf is None:
            leaf = self._leaves[key] = []
            self._versions[key] = 0
        cluster, change = self._place(leaf, key, tokens)
        if change is not Change.MATCHED:
            self._versions[key] += 1
            root = cluster.root
            self._index(cluster)
            if change is Change.NEW and cluster.root is not root:
                change = Change.GENERALIZED  # the new shape joined an older template
        if len(self._cache) >= self.config.cache_size:
            self._cache.clear()
        self._cache[text] = (cluster, key, self._versions[key])
        cluster.size += 1
        return self._result(cluster, change, masked, tokens)

    def _place(self, leaf: list[Cluster], key: _Leaf, tokens: list[str]) -> tuple[Cluster, Change]:
        """The shape ``tokens`` joins (widened as needed) or a new one, and what changed."""
        found, soft = self._best(leaf, tokens)
        if found is not None:
            return found, self._merge(found, tokens)
        anchor: Cluster | None = None
        if soft is not None:
            anchor = soft.anchor or soft
            positions = self._soft_positions(anchor, tokens)
            if positions is None:
                anchor = None
            elif Family.note(anchor, positions, tokens, self.config.value_after):
                change = self._merge(anchor, tokens)
                if self.config.merge_live:
                    self._adopt(anchor)
                return anchor, change
        cluster = self._create(key, tokens)
        leaf.append(cluster)
        if anchor is not None:
            cluster.anchor = anchor
            anchor.siblings.append(cluster)
        return cluster, Change.NEW

    def _best(self, leaf: list[Cluster], tokens: list[str]) -> tuple[Cluster | None, Cluster | None]:
        """The most similar shape a line may join, else the most similar it only soft-clashes with."""
        best: Cluster | None = None
        soft: Cluster | None = None
        best_score = soft_score = -1.0
        n = len(tokens)
        for cluster in leaf:
            same = 0
            var = 0
            clashed = False
            for t, w, x in zip(cluster.tokens, cluster.wild, tokens, strict=True):
                if t == x:
                    same += 1
                elif w is not None:
                    if covers(w, x):
                        var += 1
                else:
                    c = clash(t, x)
                    if c is Clash.HARD:
                        same = -n
                        break
                    clashed = clashed or c is Clash.SOFT
            score = (same + var) / n
            if clashed:
                if score > soft_score:
                    soft, soft_score = cluster, score
            elif score > best_score:
                best, best_score = cluster, score
        threshold = self.config.similarity
        return (best if best_score >= threshold else None), (soft if soft_score >= threshold else None)

    def _soft_positions(self, anchor: Cluster, tokens: list[str]) -> list[int] | None:
        """Where ``tokens`` soft-clash with ``anchor``; None when a hard clash or nothing does."""
        out = []
        for i, (t, w, x) in enumerate(zip(anchor.tokens, anchor.wild, tokens, strict=True)):
            if t == x or (w is not None and covers(w, x)) or w is not None:
                continue
            c = clash(t, x)
            if c is Clash.HARD:
                return None
            if c is Clash.SOFT:
                out.append(i)
        return out or None

    def _adopt(self, anchor: Cluster) -> None:
        """Join the siblings that now differ from ``anchor`` only where it has wildcards."""
        for sibling in anchor.siblings:
            if sibling.root is not anchor.root and differences(anchor, sibling) == []:
                link(anchor, sibling, self.clusters)

    def _index(self, cluster: Cluster, join: bool = True) -> None:
        """Join ``cluster``'s group to the templates of its route with an alike skeleton.

        Shapes are filed by route (first two tokens) and skeleton length; a shape whose
        skeleton changed is moved.
        """
        threshold = self.config.join_similarity
        if threshold is None:
            return
        old = cluster.skel
        skel = cluster.skel = skeleton(cluster.tokens)
        if old is not None and len(old) != len(skel):
            self._skeletons[(cluster.key, len(old))].remove(cluster)
        bucket = self._skeletons.setdefault((cluster.key, len(skel)), [])
        if old is None or len(old) != len(skel):
            bucket.append(cluster)
        live = self.config.merge_live
        if not join or not anchored(skel) or not (live or old is None):
            return  # without merge_live only a new shape may join (one) older template
        for other in bucket:
            if other.root is cluster.root or other.skel is None:
                continue
            if alike(skel, other.skel, threshold):
                link(other, cluster, self.clusters)
                if not live:
                    return

    def _create(self, key: _Leaf, tokens: list[str]) -> Cluster:
        cid = template_id(" ".join(tokens), self._shapes)
        cluster = Cluster(cid, key[1], list(tokens), [None] * len(tokens), len(self._shapes))
        self._shapes[cid] = cluster
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
        cluster.wild_positions = tuple(i for i, w in enumerate(cluster.wild) if w is not None)
        if len(cluster.root.members) > 1:
            cluster.refresh()
        else:
            cluster.text = " ".join(cluster.tokens)
        return Change.GENERALIZED

    def _result(
        self, cluster: Cluster, change: Change, masked: MaskedLine, tokens: Sequence[str] | None
    ) -> MatchResult:
        params = masked.params
        if cluster.wild_positions:
            if tokens is None:
                tokens = masked.tokens
            extra = []
            wilds = cluster.wild
            for i in cluster.wild_positions:
                wild = wilds[i]
                token = tokens[i]
                value = token[len(wild[0]) : len(token) - len(wild[1])] if wild is not None else token
                if not (value.startswith("<") and value.endswith(">")):
                    extra.append(Param(WILDCARD, value))
            params = params + tuple(extra)
        root = cluster.root
        return MatchResult(root.id, root.text, change, params)
