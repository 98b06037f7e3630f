"""A tiny deterministic embedder for tests: signed feature hashing of words and trigrams."""

from __future__ import annotations

import hashlib
import re

from stream_processors.embed.base import Vectors, empty, l2_normalize

_WORD = re.compile(r"[a-z0-9]+|<[^>]*>")


class HashEmbedder:
    """Bag of hashed lower-case words and character trigrams, L2-normalised.

    Texts sharing words land close together, so novelty and search behave
    plausibly in tests; no model, no randomness, no I/O. ``calls`` counts
    :meth:`embed` invocations (tests assert on batching with it).
    """

    def __init__(self, dim: int = 64) -> None:
        if dim < 2:
            raise ValueError("dim must be at least 2")
        self._dim = dim
        self.calls = 0

    @property
    def model_version(self) -> str:
        return f"hash-v1-d{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: list[str]) -> Vectors:
        import numpy as np

        self.calls += 1
        if not texts:
            return empty(self._dim)
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feature, weight in _features(text):
                digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
                value = int.from_bytes(digest, "little")
                sign = 1.0 if value & 1 else -1.0
                out[row, (value >> 1) % self._dim] += sign * weight
        return l2_normalize(out)


def _features(text: str) -> list[tuple[str, float]]:
    words = _WORD.findall(text.lower())
    features = [("w:" + w, 1.0) for w in words]
    for w in words:
        padded = f"^{w}$"
        features.extend(("c:" + padded[i : i + 3], 0.3) for i in range(len(padded) - 2))
    return features
