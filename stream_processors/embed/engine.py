"""The embedder the settings name: ``SEISMO_EMBEDDER`` (minilm or hash), through the trained
adapter of ``SEISMO_EMBED_ADAPTER`` when one is configured (:mod:`.adapter`) — or, when that
names a folder, the fine-tuned model in it (:mod:`.finetune_full`) — and the cache the worker
and the gateway share in front of it (:func:`configured_cache`)."""

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

    if settings.embed_adapter is not None and settings.embed_adapter.is_dir():
        return finetuned_embedder(settings)
    inner: Embedder = MiniLMEmbedder() if settings.embedder == "minilm" else HashEmbedder()
    if settings.embed_adapter is None:
        return inner
    from stream_processors.embed.adapter import AdaptedEmbedder, load_adapter

    w, _ = load_adapter(settings.embed_adapter, inner.model_version, inner.dim)
    return AdaptedEmbedder(inner, w)


def finetuned_embedder(settings: Settings) -> Embedder:
    """The numpy engine on the fine-tuned model folder ``settings.embed_adapter`` (checked against
    the packaged base model).  Raises AdapterError when it cannot be used."""
    from stream_processors.embed.adapter import AdapterError
    from stream_processors.embed.finetune_full import check_finetuned
    from stream_processors.embed.minilm import MiniLMEmbedder
    from stream_processors.embed.model import ModelConfig, model_dir, model_version

    folder = settings.embed_adapter
    assert folder is not None
    if settings.embedder != "minilm":
        raise AdapterError(f"{folder} is a fine-tuned MiniLM model; it needs SEISMO_EMBEDDER=minilm, "
                           f"not {settings.embedder}")
    base = model_dir()
    check_finetuned(folder, model_version(base, ModelConfig.read(base).max_seq_length))
    return MiniLMEmbedder(folder)


def configured_cache(settings: Settings) -> CachedEmbedder:
    """:func:`configured_embedder` behind its LRU and, unless ``SEISMO_STATE_BACKEND=memory``, the
    Redis cache of the deployment's namespace: the keys the worker fills are the ones the gateway
    reads."""
    from stream_processors.embed.cache import CachedEmbedder

    redis_url = None if settings.state_backend == "memory" else settings.redis
    return CachedEmbedder(configured_embedder(settings), redis_url, lru_size=settings.embed_lru_size,
                          namespace=settings.embed_cache_prefix)
