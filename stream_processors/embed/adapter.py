"""Domain adaptation of the template embedder: a linear head trained contrastively on a user's logs.

``seismo embed finetune --from FILE`` mines FILE's templates (the offline miner of
``seismo templates``), and trains ``W = I + U`` (384 x 384) so that each line's vector lands
nearest its own template's vector among the file's templates: InfoNCE with in-batch
negatives, one line per template in a batch (no false negatives), Adam, weight decay
pulling ``U`` towards zero (the base model's geometry is where training starts and what it
is pulled back to).  :class:`AdaptedEmbedder` then gives ``normalize(base(text) @ W)``.

Why a head and not the transformer's weights: the base model runs as a numpy forward pass
(no torch in a default install, and the worker must not need it); a head trains in numpy in
seconds on two cores, cannot break the verified forward pass, and is a 0.6 MB file.  What
it buys is measured by ``bench/embed_adapter.py`` (nearest-template retrieval of raw lines
on Loghub systems, the base beside the adapted embedder: trained on the other systems, and
on the first half of the system's own lines).

The file (``.npz``, read without pickle) holds ``W`` and a JSON header naming the base
model version it was trained on; :func:`load_adapter` refuses a file made for another
base model or of the wrong shape.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stream_processors.embed.base import Embedder, Vectors, l2_normalize
from stream_processors.embed.exceptions import EmbedError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

FORMAT = "seismo-embed-adapter/1"


class AdapterError(EmbedError):
    """An adapter file that cannot be used: missing, unreadable, or made for another model."""


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 300
    batch: int = 128
    lr: float = 1e-3
    temperature: float = 0.05
    decay: float = 1e-3
    seed: int = 0


def train(
    anchors: Vectors, positives: Vectors, groups: Sequence[str], config: TrainConfig | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> npt.NDArray[np.float32]:
    """``W`` (d x d) that brings each anchor row nearest its positive row (its template) among the
    batch's other positives.  ``groups`` names each row's template; a batch takes one row per
    template.  ``progress(step, loss)`` hears each step.  Raises ValueError with fewer than two
    templates (nothing to tell apart)."""
    import numpy as np

    config = config or TrainConfig()
    if len(anchors) != len(positives) or len(anchors) != len(groups):
        raise ValueError("anchors, positives and groups must have one row each per line")
    by: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        by.setdefault(g, []).append(i)
    if len(by) < 2:
        raise ValueError(f"{len(by)} template(s): training needs at least two to tell apart")
    rng = np.random.default_rng(config.seed)
    d = anchors.shape[1]
    eye = np.eye(d, dtype=np.float32)
    u = np.zeros((d, d), np.float32)
    m, v = np.zeros_like(u), np.zeros_like(u)
    keys = sorted(by)
    members = [np.array(by[k]) for k in keys]
    for step in range(1, config.steps + 1):
        picked = rng.choice(len(keys), size=min(config.batch, len(keys)), replace=False)
        idx = np.array([rng.choice(members[g]) for g in picked])
        a, p = anchors[idx], positives[idx]
        w = eye + u
        av, pv = a @ w, p @ w
        an = np.maximum(np.linalg.norm(av, axis=1, keepdims=True), 1e-12)
        pn = np.maximum(np.linalg.norm(pv, axis=1, keepdims=True), 1e-12)
        ah, ph = av / an, pv / pn
        logits = ah @ ph.T / config.temperature
        logits -= logits.max(axis=1, keepdims=True)
        prob = np.exp(logits)
        prob /= prob.sum(axis=1, keepdims=True)
        n = len(idx)
        loss = float(-np.log(np.maximum(np.diag(prob), 1e-30)).mean())
        d_logits = (prob - np.eye(n, dtype=np.float32)) / (n * config.temperature)
        d_ah, d_ph = d_logits @ ph, d_logits.T @ ah
        d_av = (d_ah - ah * (d_ah * ah).sum(axis=1, keepdims=True)) / an
        d_pv = (d_ph - ph * (d_ph * ph).sum(axis=1, keepdims=True)) / pn
        grad = a.T @ d_av + p.T @ d_pv + config.decay * u
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad * grad
        m_hat, v_hat = m / (1 - 0.9 ** step), v / (1 - 0.999 ** step)
        u -= (config.lr * m_hat / (np.sqrt(v_hat) + 1e-8)).astype(np.float32)
        if progress is not None:
            progress(step, loss)
    out: npt.NDArray[np.float32] = (eye + u).astype(np.float32)
    return out


def retrieval_accuracy(queries: Vectors, labels: Sequence[str], candidates: Vectors, names: Sequence[str],
                       w: npt.NDArray[np.float32] | None = None) -> float:
    """Share of query rows whose nearest candidate (cosine, after ``w`` when given) is its label."""
    import numpy as np

    if not len(queries):
        return 0.0
    q, c = (queries, candidates) if w is None else (queries @ w, candidates @ w)
    nearest = (l2_normalize(q) @ l2_normalize(c).T).argmax(axis=1)
    index = {n: i for i, n in enumerate(names)}
    want = np.array([index[label] for label in labels])
    return float((nearest == want).mean())


def digest(w: npt.NDArray[np.float32]) -> str:
    return hashlib.sha256(w.tobytes()).hexdigest()[:12]


class AdaptedEmbedder:
    """``inner``'s vectors through the trained head, L2-normalised; its own model version, so
    vectors of the base and of the adapted embedder are never cached or compared as one."""

    def __init__(self, inner: Embedder, w: npt.NDArray[np.float32]) -> None:
        if w.shape != (inner.dim, inner.dim):
            raise AdapterError(f"adapter is {w.shape[0]}x{w.shape[1]}, the embedder gives {inner.dim} dims")
        self.inner, self.w = inner, w
        self._version = f"{inner.model_version}+adapter:{digest(w)}"

    @property
    def model_version(self) -> str:
        return self._version

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts: list[str]) -> Vectors:
        vectors = self.inner.embed(texts)
        if not len(vectors):
            return vectors
        return l2_normalize(vectors @ self.w)


def save_adapter(path: Path, w: npt.NDArray[np.float32], meta: dict[str, Any]) -> None:
    """Write ``w`` and ``meta`` (with the format name) to ``path`` (``.npz``), atomically."""
    import numpy as np

    header = json.dumps({"format": FORMAT, **meta}, sort_keys=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        np.savez(fh, w=w.astype(np.float32), meta=np.array(header))
    tmp.replace(path)


def load_adapter(path: Path, base_version: str, dim: int) -> tuple[npt.NDArray[np.float32], dict[str, Any]]:
    """``(W, meta)`` of the adapter file at ``path``, checked against the base model it will wrap.
    Raises :class:`AdapterError` naming the file and what is wrong."""
    import numpy as np

    if not path.is_file():
        raise AdapterError(f"embedding adapter {path} does not exist (SEISMO_EMBED_ADAPTER); "
                           "make one with `seismo embed finetune --from FILE`")
    try:
        with np.load(path, allow_pickle=False) as npz:
            w, meta = np.asarray(npz["w"], dtype=np.float32), json.loads(str(npz["meta"]))
    except (OSError, ValueError, KeyError) as exc:
        raise AdapterError(f"embedding adapter {path} is not a Seismo adapter file: {exc}") from None
    found = meta.get("format") if isinstance(meta, dict) else None
    if not isinstance(meta, dict) or found != FORMAT:
        raise AdapterError(f"embedding adapter {path} has format {found!r}, expected {FORMAT}")
    if meta.get("base") != base_version:
        raise AdapterError(f"embedding adapter {path} was trained on {meta.get('base')}, the embedder is "
                           f"{base_version}: train it again with `seismo embed finetune`")
    if w.shape != (dim, dim):
        raise AdapterError(f"embedding adapter {path} is {w.shape}, expected ({dim}, {dim})")
    return w, meta
