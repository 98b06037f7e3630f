"""The embedder the settings name: ``SEISMO_EMBEDDER`` (minilm or hash), through the trained
adapter of ``SEISMO_EMBED_ADAPTER`` when one is configured (:mod:`.adapter`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stream_processors.embed.base import Embedder

if TYPE_CHECKING:
    from seismo.settings import Settings


def configured_embedder(settings: Settings) -> Embedder:
    """The base engine, adapted when ``settings.embed_adapter`` is set.  Raises
    :class:`~stream_processors.embed.exceptions.EmbedError` (ModelNotFound, AdapterError) when
    the model or the adapter file cannot be used; ``SEISMO_EMBEDDER=off`` is the caller's to check."""
    from stream_processors.embed.hashing import HashEmbedder
    from stream_processors.embed.minilm import MiniLMEmbedder

    inner: Embedder = MiniLMEmbedder() if settings.embedder == "minilm" else HashEmbedder()
    if settings.embed_adapter is None:
        return inner
    from stream_processors.embed.adapter import AdaptedEmbedder, load_adapter

    w, _ = load_adapter(settings.embed_adapter, inner.model_version, inner.dim)
    return AdaptedEmbedder(inner, w)
