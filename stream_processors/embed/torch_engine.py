"""The same model through torch + transformers, for users who already have torch.

Also the fp32 reference that ``bench/embed.py --check-reference`` compares the numpy
engine against. torch and transformers are imported when an instance is built
(through :mod:`importlib`, so type checking never needs them installed), always with
``HF_HUB_OFFLINE=1`` and ``local_files_only``: nothing is fetched from any hub.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from stream_processors.embed.base import Vectors, empty, l2_normalize
from stream_processors.embed.model import ModelConfig, model_dir, model_version, offline


def torch_available() -> bool:
    """Whether ``torch`` and ``transformers`` can be imported."""
    try:
        importlib.import_module("torch")
        importlib.import_module("transformers")
    except ImportError:
        return False
    return True


class TorchEmbedder:
    """transformers ``AutoModel`` + mean pooling + L2 normalisation, fp32 on CPU by default.

    Same ``model_version`` as :class:`MiniLMEmbedder` (same model, same vectors up to
    float rounding), so both can share one cache. ``embed`` blocks; raises
    ``ImportError`` at construction when torch or transformers is missing.
    """

    def __init__(self, folder: Path | None = None, batch_size: int = 32, device: str = "cpu") -> None:
        offline()
        self._torch: Any = importlib.import_module("torch")
        transformers: Any = importlib.import_module("transformers")
        self.folder = model_dir(folder)
        self.config = ModelConfig.read(self.folder)
        self.batch_size = batch_size
        self.device = device
        self._version = model_version(self.folder, self.config.max_seq_length)
        self._tokenizer: Any = transformers.AutoTokenizer.from_pretrained(
            str(self.folder), local_files_only=True
        )
        model: Any = transformers.AutoModel.from_pretrained(str(self.folder), local_files_only=True)
        self._model: Any = model.to(device=device, dtype=self._torch.float32).eval()

    @property
    def model_version(self) -> str:
        return self._version

    @property
    def dim(self) -> int:
        return self.config.hidden

    def embed(self, texts: list[str]) -> Vectors:
        import numpy as np

        if not texts:
            return empty(self.dim)
        torch = self._torch
        chunks: list[Vectors] = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = self._tokenizer(
                    texts[start : start + self.batch_size],
                    padding=True,
                    truncation=True,
                    max_length=self.config.max_seq_length,
                    return_tensors="pt",
                ).to(self.device)
                hidden = self._model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                chunks.append(pooled.float().cpu().numpy())
        return l2_normalize(np.concatenate(chunks).astype(np.float32))
