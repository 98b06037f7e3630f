"""Template embeddings, novelty and semantic search (all-MiniLM-L6-v2, no torch needed).

Pure logic, no Kafka. numpy, faiss, tokenizers and safetensors are imported only
when an engine or index is built, so importing this package is cheap.

* :class:`Embedder` — the seam; :class:`HashEmbedder` (tests), :class:`MiniLMEmbedder`
  (numpy, production), :class:`TorchEmbedder` (optional, for users with torch).
* :class:`CachedEmbedder` — each template embedded once: LRU + Redis.
* :class:`NoveltyIndex` — per service, ``1 - max cosine`` to the other templates.
* :class:`EventSearchIndex` — the most recent events of all sources, by meaning.
"""

from stream_processors.embed.base import Embedder, l2_normalize
from stream_processors.embed.cache import CachedEmbedder, CacheStats
from stream_processors.embed.exceptions import EmbedError, IndexMismatch, ModelNotFound
from stream_processors.embed.hashing import HashEmbedder
from stream_processors.embed.minilm import MiniLMEmbedder
from stream_processors.embed.model import model_dir, model_version
from stream_processors.embed.novelty import NoveltyIndex, registry_templates
from stream_processors.embed.search import EventSearchIndex
from stream_processors.embed.torch_engine import TorchEmbedder, torch_available

__all__ = [
    "CacheStats",
    "CachedEmbedder",
    "EmbedError",
    "Embedder",
    "EventSearchIndex",
    "HashEmbedder",
    "IndexMismatch",
    "MiniLMEmbedder",
    "ModelNotFound",
    "NoveltyIndex",
    "TorchEmbedder",
    "l2_normalize",
    "model_dir",
    "model_version",
    "registry_templates",
    "torch_available",
]
