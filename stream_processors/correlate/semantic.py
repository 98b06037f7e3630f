"""Semantic similarity of templates for correlation: a 128-bit SimHash of each template's embedding.

Two symptoms whose templates *mean* the same thing — ``upstream timeout calling payments`` and
``request to payments timed out`` — are evidence of one problem even when the miner gave them
different templates.  Stage 1 of the correlate step signs each symptom's template with the sign
pattern of its embedding against :data:`SIG_BITS` fixed random hyperplanes (Charikar's SimHash);
the signature travels on the signal (``extra["shape"]``, 32 hex digits), the incident keeps its
templates' signatures, and the angle between two embeddings is estimated from the share of bits
that differ: ``cos(pi * hamming / bits)``.  The correlator stays pure and cheap — a popcount per
pair — and needs neither the model nor the vectors.

The vectors come from the embedding cache the normalize step fills (in-process LRU, then Redis,
keyed by template id), so a template is embedded once per deployment; a miss computes it.  A
signature is a function of the template text and the model, so a replay signs the same way.
When the embedder is off or fails, symptoms carry no signature and this evidence is simply
absent (logged once per failure streak).
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stream_processors.embed.cache import CachedEmbedder

log = logging.getLogger(__name__)

SIG_BITS = 128
SEED = 20_261_206  # the hyperplanes are part of the format: every process must draw the same
SIMILAR_MIN = 0.85  # estimated cosine from which two templates count as saying the same thing
MEMO = 50_000


@cache
def hyperplanes(dim: int) -> Any:
    """The fixed ``(dim, SIG_BITS)`` Gaussian hyperplanes of one embedding size."""
    import numpy as np

    return np.random.default_rng(SEED).standard_normal((dim, SIG_BITS)).astype(np.float32)


def signature(vector: Any) -> str:
    """The SimHash of one embedding: bit ``i`` set when it lies on the positive side of plane ``i``."""
    import numpy as np

    v = np.asarray(vector, dtype=np.float32).reshape(-1)
    bits = (v @ hyperplanes(v.shape[0])) > 0
    return f"{int(''.join('1' if b else '0' for b in bits), 2):0{SIG_BITS // 4}x}"


def similarity(a: str, b: str) -> float:
    """Estimated cosine of the embeddings behind two signatures (1.0 for equal ones)."""
    if not a or not b or len(a) != len(b):
        return 0.0
    differ = (int(a, 16) ^ int(b, 16)).bit_count()
    return math.cos(math.pi * differ / (len(a) * 4))


def most_similar(sig: str, others: Any) -> float:
    """The highest estimated cosine between ``sig`` and any of ``others`` (0.0 when none)."""
    return max((similarity(sig, o) for o in others), default=0.0)


class TemplateSigner:
    """Signs templates by id through the shared embedding cache; "" when it cannot.

    ``cache`` is called once, at the first signature asked for, so a worker that never sees a
    templated symptom never loads a model."""

    def __init__(self, cache: Callable[[], CachedEmbedder]) -> None:
        self._make = cache
        self._cache: CachedEmbedder | None = None
        self._memo: OrderedDict[str, str] = OrderedDict()
        self._failing = False

    def sign(self, template_id: str, text: str) -> str:
        known = self._memo.get(template_id)
        if known is not None:
            self._memo.move_to_end(template_id)
            return known
        try:
            if self._cache is None:
                self._cache = self._make()
            vector = self._cache.embed_keyed([template_id], [text])[0]
        except Exception as exc:  # the model, the adapter or the engine: no evidence, no crash
            if not self._failing:
                log.warning("correlate: cannot embed templates (%s); no semantic links until it can", exc)
            self._failing = True
            return ""
        if self._failing:
            log.info("correlate: template embeddings work again; semantic links are back")
            self._failing = False
        sig = self._memo[template_id] = signature(vector)
        if len(self._memo) > MEMO:
            self._memo.popitem(last=False)
        return sig
