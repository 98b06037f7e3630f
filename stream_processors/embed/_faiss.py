"""Small helpers around faiss: flat inner-product indexes and atomic files."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from stream_processors.embed.base import Vectors

_single_threaded = False


def _faiss() -> Any:
    """The faiss module, set to one OpenMP thread on first use.

    Our indexes hold hundreds to a few thousand rows and are queried one vector at a
    time: threads buy nothing there, and idle OpenMP workers spinning after each
    search starve the BLAS threads of the embedding engine (measured: engine
    throughput fell severalfold on a 2-core machine).
    """
    global _single_threaded
    import faiss

    if not _single_threaded:
        faiss.omp_set_num_threads(1)
        _single_threaded = True
    return faiss


def flat_ip(dim: int, vectors: Vectors | None = None) -> Any:
    """A new ``IndexFlatIP`` (cosine on unit vectors), filled with ``vectors`` if given."""
    import numpy as np

    index = _faiss().IndexFlatIP(dim)
    if vectors is not None and len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def rows(vectors: Vectors) -> Vectors:
    """``vectors`` as a C-contiguous float32 2-D array, as faiss wants it."""
    import numpy as np

    out: Vectors = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
    return out


def write_index(index: Any, path: Path) -> None:
    """``faiss.write_index`` to a temporary name, then an atomic rename."""
    tmp = path.with_name(path.name + ".tmp")
    _faiss().write_index(index, str(tmp))
    os.replace(tmp, path)


def read_index(path: Path) -> Any:
    return _faiss().read_index(str(path))


def write_json(data: dict[str, Any], path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, separators=(",", ":"), sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return data


def id_map_ip(dim: int) -> Any:
    """A new ``IndexIDMap2`` over an ``IndexFlatIP``: rows addressed by our own int64 ids,
    removable with ``remove_ids`` and readable with ``reconstruct(id)``."""
    faiss = _faiss()
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def id_array(ids: list[int]) -> Any:
    """``ids`` as the int64 array faiss wants for ``add_with_ids``/``remove_ids``."""
    import numpy as np

    return np.asarray(ids, dtype=np.int64)
