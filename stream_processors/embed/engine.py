"""The embedder the settings name: ``SEISMO_EMBEDDER`` (minilm or hash), through the trained
adapter of ``SEISMO_EMBED_ADAPTER`` when one is configured (:mod:`.adapter`), and the cache the
worker and the gateway share in front of it (:func:`configured_cache`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stream_processors.embed.base import Embedder

if TYPE_CHECKING:
    from seismo.settings import Settings
    from stream_processors.embed.cache import CachedEmbedder


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


def configured_cache(settings: Settings) -> CachedEmbedder:
    """:func:`configured_embedder` behind its LRU and, unless ``SEISMO_STATE_BACKEND=memory``, the
    Redis cache of the deployment's namespace: the keys the worker fills are the ones the gateway
    reads."""
    from stream_processors.embed.cache import CachedEmbedder

    redis_url = None if settings.state_backend == "memory" else settings.redis
    return CachedEmbedder(configured_embedder(settings), redis_url, lru_size=settings.embed_lru_size,
                          namespace=settings.embed_cache_prefix)
