"""New log patterns: HDBSCAN over template embeddings, reclustered in micro-batches.

Each template the miner discovers has an embedding; :class:`TemplateClusterDetector`
keeps the last ``window`` distinct templates as unit vectors, reclusters them with
HDBSCAN after every ``refit_every`` new ones, and gives two signals:

* ``score_one`` / ``score_vector``: how unlike everything known a template is;
* ``new_pattern_clusters()``: the clusters of the last refit made only of
  templates first seen since the refit before, i.e. a family of messages the
  system never printed before (a new code path, a new failure mode).

Unit vectors are clustered with the euclidean metric, which on the unit sphere is
a monotone function of the cosine distance (``|a - b|^2 = 2 - 2 cos``), so the
fast tree algorithms apply.  HDBSCAN is deterministic; ``seed`` is kept for the
shared estimator API.  It comes from the ``hdbscan`` package (scikit-learn-contrib,
manylinux wheels on PyPI), imported at the first refit; ``sklearn.cluster.HDBSCAN``
is a port of it and would be a drop-in replacement.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from models.base import Features
from models.state import (
    DataState,
    Document,
    StateError,
    integer,
    number,
    pack,
    pack_matrix,
    unpack,
    unpack_matrix,
)

Vector = npt.NDArray[np.float64]


def embedding_features(vector: npt.ArrayLike) -> Features:
    """An embedding as a feature dict: component ``i`` under the key ``f"e{i}"``."""
    return {f"e{i}": float(v) for i, v in enumerate(np.asarray(vector, dtype=np.float64).ravel())}


def _padded(matrix: Vector, dim: int) -> Vector:
    """``matrix`` (2-D) with zero columns appended up to ``dim``."""
    return np.pad(matrix, ((0, 0), (0, dim - matrix.shape[1])))


def _digest(unit: Vector) -> bytes:
    """The identity of a direction; trailing zeros (keys added later) do not change it."""
    return hashlib.blake2b(np.trim_zeros(unit, "b").tobytes(), digest_size=16).digest()


@dataclass(frozen=True, eq=False)
class PatternCluster:
    """One HDBSCAN cluster of the last refit.

    ``members`` are the first-seen numbers of its templates (0 for the first
    template ever learned), ``novelty`` is ``1 - max cosine similarity`` between
    its centroid and what the previous refit knew (1.0 at the first refit), and
    ``new`` says every member was first seen after the previous refit.
    """

    label: int
    members: tuple[int, ...]
    novelty: float
    new: bool
    centroid: Vector = field(repr=False)

    @property
    def size(self) -> int:
        return len(self.members)


class TemplateClusterDetector(DataState):
    """Template novelty against HDBSCAN clusters of the last ``window`` distinct templates.

    ``learn_one`` takes a feature dict (an embedding as :func:`embedding_features`
    writes it, or any sparse vector: keys map to dimensions in first-seen order,
    missing keys read 0.0, non-finite values are dropped); ``learn_vector`` takes
    the array.  A template is its direction: a zero vector is ignored, and one
    already in the window only counts as recently seen (the least recently seen
    template is evicted first).  The first refit runs at ``refit_every`` new
    templates, as does every later one.

    ``score_one`` is ``1 - max cosine similarity`` with the references, clipped to
    [0, 1]: the centroid of each cluster of the last refit, plus every template
    that is in no cluster (its noise, and templates learned since).  It is 0.0 for
    a template already in the window, and before anything was learned.
    ``min_cluster_size`` and ``min_samples`` are HDBSCAN's.
    """

    def __init__(
        self,
        window: int = 2000,
        refit_every: int = 50,
        min_cluster_size: int = 5,
        min_samples: int | None = None,
        seed: int = 0,
    ) -> None:
        if min_cluster_size < 2:
            raise ValueError(f"min_cluster_size must be at least 2, got {min_cluster_size}")
        if not max(min_cluster_size, min_samples or 1) < refit_every <= window:
            raise ValueError("need max(min_cluster_size, min_samples) < refit_every <= window")
        self.window = window
        self.refit_every = refit_every
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.seed = seed  # HDBSCAN is deterministic; kept for the shared estimator API
        self._index: dict[str, int] = {}  # key -> dimension, append-only
        # digest -> (first-seen number, unit vector), least recently seen first
        self._templates: OrderedDict[bytes, tuple[int, Vector]] = OrderedDict()
        self._seen = 0  # distinct templates ever learned: the next first-seen number
        self._pending = 0  # new templates since the last refit
        self._fit_seen: int | None = None  # ``_seen`` at the last refit
        self._refs: Vector = np.zeros((0, 0))  # unit references, one per row
        self._fit_refs = 0  # leading rows of ``_refs`` that came from the last refit
        self._clusters: tuple[PatternCluster, ...] = ()
        self._fits = 0

    STATE_FORMAT = "seismo.template_clusters"

    def _dump_state(self) -> Document:
        return {
            "index": list(self._index),  # dimension i is the i-th key
            "templates": [[seen, pack(unit)] for seen, unit in self._templates.values()],
            "seen": self._seen, "pending": self._pending, "fit_seen": self._fit_seen,
            "refs": pack_matrix(self._refs), "fit_refs": self._fit_refs, "fits": self._fits,
            "clusters": [
                [c.label, list(c.members), c.novelty, c.new, pack(c.centroid)] for c in self._clusters
            ],
        }

    def _load_state(self, state: Document) -> None:
        keys = state["index"]
        if not all(isinstance(k, str) for k in keys) or len(set(keys)) != len(keys):
            raise StateError("template dimensions are not distinct names")
        dim = len(keys)
        templates: OrderedDict[bytes, tuple[int, Vector]] = OrderedDict()
        for seen, packed in state["templates"]:
            unit = unpack(packed)
            if len(unit) > dim:
                raise StateError("a template has more dimensions than the index")
            templates[_digest(unit)] = (integer(seen), unit)
        if len(templates) > self.window:
            raise StateError(f"{len(templates)} saved templates for a window of {self.window}")
        refs = unpack_matrix(state["refs"], 2)
        if len(refs) and refs.shape[1] > dim:
            raise StateError("references have more dimensions than the index")
        clusters = tuple(
            PatternCluster(integer(label), tuple(integer(m) for m in members), number(novelty),
                           bool(new), unpack(centroid))
            for label, members, novelty, new, centroid in state["clusters"]
        )
        fit_seen = state["fit_seen"]
        self._index = {k: i for i, k in enumerate(keys)}
        self._templates = templates
        self._seen, self._pending = integer(state["seen"]), integer(state["pending"])
        self._fit_seen = None if fit_seen is None else integer(fit_seen)
        self._refs, self._fit_refs = refs, integer(state["fit_refs"])
        self._clusters, self._fits = clusters, integer(state["fits"])

    @property
    def fits(self) -> int:
        """How many times the templates were reclustered."""
        return self._fits

    @property
    def n_templates(self) -> int:
        """How many distinct templates the window holds."""
        return len(self._templates)

    @property
    def clusters(self) -> tuple[PatternCluster, ...]:
        """Every cluster of the last refit, by label."""
        return self._clusters

    def new_pattern_clusters(self) -> list[PatternCluster]:
        """The last refit's clusters made only of templates first seen since the refit before.

        Empty until the second refit: the first one only forms the baseline.
        """
        return [c for c in self._clusters if c.new]

    def _encode(self, x: Features, grow: bool) -> tuple[Vector, bool] | None:
        """``x`` as a unit vector over the known dimensions, and whether it lost none."""
        values = {k: float(v) for k, v in x.items() if math.isfinite(v) and v != 0.0}
        norm = math.hypot(*values.values())
        if norm == 0.0 or not math.isfinite(norm):
            return None
        if grow:
            for key in values:
                self._index.setdefault(key, len(self._index))
        unit = np.zeros(len(self._index))
        complete = True
        for key, value in values.items():
            column = self._index.get(key)
            if column is None:
                complete = False
            else:
                unit[column] = value / norm
        return unit, complete

    def learn_one(self, x: Features) -> None:
        encoded = self._encode(x, grow=True)
        if encoded is None:
            return
        unit = encoded[0]
        digest = _digest(unit)
        if digest in self._templates:
            self._templates.move_to_end(digest)
            return
        self._templates[digest] = (self._seen, unit)
        self._seen += 1
        if len(self._templates) > self.window:
            self._templates.popitem(last=False)
        self._refs = np.vstack([_padded(self._refs, len(unit)), unit[None, :]])
        self._pending += 1
        if self._pending >= self.refit_every:
            self._refit()

    def learn_vector(self, vector: npt.ArrayLike) -> None:
        """``learn_one`` of an embedding array."""
        self.learn_one(embedding_features(vector))

    def _refit(self) -> None:
        import hdbscan

        dim = len(self._index)
        seen = np.array([s for s, _ in self._templates.values()])
        units = np.stack([np.pad(u, (0, dim - len(u))) for _, u in self._templates.values()])
        model = hdbscan.HDBSCAN(min_cluster_size=self.min_cluster_size, min_samples=self.min_samples)
        labels = np.asarray(model.fit_predict(units))
        old_refs = _padded(self._refs[: self._fit_refs], dim)
        clusters = []
        for label in sorted(set(labels.tolist()) - {-1}):
            inside = labels == label
            centroid = units[inside].mean(axis=0)
            centroid /= np.linalg.norm(centroid) or 1.0
            similarity = float(np.max(old_refs @ centroid)) if len(old_refs) else 0.0
            new = self._fit_seen is not None and int(seen[inside].min()) >= self._fit_seen
            members = tuple(sorted(seen[inside].tolist()))
            novelty = min(max(1.0 - similarity, 0.0), 1.0)
            clusters.append(PatternCluster(label, members, novelty, new, centroid))
        centroids = [c.centroid[None, :] for c in clusters]
        self._refs = np.vstack([np.zeros((0, dim)), *centroids, units[labels == -1]])
        self._fit_refs = len(self._refs)
        self._clusters = tuple(clusters)
        self._fit_seen = self._seen
        self._pending = 0
        self._fits += 1

    def score_one(self, x: Features) -> float:
        if not len(self._refs):
            return 0.0
        encoded = self._encode(x, grow=False)
        if encoded is None:
            return 0.0
        unit, complete = encoded
        if complete and _digest(unit) in self._templates:
            return 0.0
        similarity = float(np.max(self._refs @ unit[: self._refs.shape[1]]))
        return min(max(1.0 - similarity, 0.0), 1.0)

    def score_vector(self, vector: npt.ArrayLike) -> float:
        """``score_one`` of an embedding array."""
        return self.score_one(embedding_features(vector))
