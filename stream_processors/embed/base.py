"""The :class:`Embedder` seam and the small numeric helpers every engine shares.

numpy is imported lazily (inside functions) so that importing this package, and so
``seismo --help``, stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, TypeAlias

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Vectors: TypeAlias = npt.NDArray[np.float32]
else:
    Vectors = object


class Embedder(Protocol):
    """Turns texts into unit-length float32 vectors.

    ``embed`` returns an array of shape ``(len(texts), dim)``, dtype float32, each
    row L2-normalised (an all-zero input row stays zero), and is deterministic:
    the same text always gives the same vector under the same ``model_version``.
    It blocks for the computation (CPU-bound). ``model_version`` names the model
    and its settings; vectors of different versions must never be compared or
    cached under one key.
    """

    @property
    def model_version(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: list[str]) -> Vectors: ...


def l2_normalize(vectors: Vectors, eps: float = 1e-12) -> Vectors:
    """Rows divided by their L2 norm (floored at ``eps``, as torch's ``F.normalize``)."""
    import numpy as np

    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    out: Vectors = (vectors / np.maximum(norms, eps)).astype(np.float32, copy=False)
    return out


def empty(dim: int) -> Vectors:
    """A ``(0, dim)`` float32 array: what ``embed([])`` returns."""
    import numpy as np

    return np.zeros((0, dim), dtype=np.float32)
