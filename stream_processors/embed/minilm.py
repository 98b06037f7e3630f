"""all-MiniLM-L6-v2 in plain numpy: the sentence-transformers forward pass without torch.

BERT encoder (embeddings + LayerNorm, then per layer: multi-head self-attention,
residual + LayerNorm, GELU feed-forward, residual + LayerNorm), mean pooling over the
attention mask, L2 normalisation: exactly the modules of the model's ``modules.json``.
Weights come from ``model.safetensors`` (``safetensors.numpy``), tokens from
``tokenizer.json`` (``tokenizers``), truncated to ``max_seq_length`` (256).
Texts are sorted by length and batched so that padding stays small; padding never
changes a vector (masked keys get zero attention, pooling ignores them).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stream_processors.embed.base import Vectors, empty, l2_normalize
from stream_processors.embed.model import ModelConfig, model_dir, model_version

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Array = npt.NDArray[np.float32]

_MASKED = -1e30


class MiniLMEmbedder:
    """The production engine.  Construction reads the config and the tokenizer; the ~90 MB of
    weights (about a second, ~200 MB resident) load at the first text that needs the model
    (:meth:`load`), so a process that finds every template in the cache never holds them.

    ``embed`` blocks for the computation (numpy/BLAS, multi-threaded); it is
    deterministic for a given machine and thread count (float32 sums may differ in
    the last bits across BLAS builds). Not thread-safe to share across threads
    only in the sense that it holds no locks; it keeps no per-call state, so
    concurrent calls are safe. Raises :class:`ModelNotFound` when the files are absent.
    """

    def __init__(self, folder: Path | None = None, batch_size: int = 32) -> None:
        from tokenizers import Tokenizer

        self.folder = model_dir(folder)
        self.config = ModelConfig.read(self.folder)
        if self.config.hidden_act != "gelu" or not self.config.pooling_mean:
            raise ValueError(
                f"unsupported model: act={self.config.hidden_act}, mean={self.config.pooling_mean}"
            )
        self.batch_size = batch_size
        self._version = model_version(self.folder, self.config.max_seq_length)
        tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=self.config.max_seq_length)
        self._tokenizer = tokenizer
        self._layers: list[dict[str, Array]] = []  # empty until load()

    def load(self) -> None:
        """Load the weights (once; :meth:`embed` calls it when it first needs the model).  The other
        weights are set before the layers, so a thread that sees the layers sees them all."""
        if self._layers:
            return
        import numpy as np
        from safetensors.numpy import load_file

        raw = load_file(str(self.folder / "model.safetensors"))
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in raw else ""

        def w(name: str, transpose: bool = False) -> Array:
            value = raw[prefix + name].astype(np.float32)
            return np.ascontiguousarray(value.T) if transpose else value

        self._word = w("embeddings.word_embeddings.weight")
        self._pos = w("embeddings.position_embeddings.weight")
        self._type = w("embeddings.token_type_embeddings.weight")
        self._emb_ln = (w("embeddings.LayerNorm.weight"), w("embeddings.LayerNorm.bias"))
        layers: list[dict[str, Array]] = []
        for i in range(self.config.layers):
            p = f"encoder.layer.{i}."
            qkv_w = np.concatenate(
                [w(p + f"attention.self.{n}.weight", transpose=True) for n in ("query", "key", "value")],
                axis=1,
            )
            qkv_b = np.concatenate([w(p + f"attention.self.{n}.bias") for n in ("query", "key", "value")])
            layers.append(
                {
                    "qkv_w": qkv_w,
                    "qkv_b": qkv_b,
                    "out_w": w(p + "attention.output.dense.weight", transpose=True),
                    "out_b": w(p + "attention.output.dense.bias"),
                    "ln1_g": w(p + "attention.output.LayerNorm.weight"),
                    "ln1_b": w(p + "attention.output.LayerNorm.bias"),
                    "ff1_w": w(p + "intermediate.dense.weight", transpose=True),
                    "ff1_b": w(p + "intermediate.dense.bias"),
                    "ff2_w": w(p + "output.dense.weight", transpose=True),
                    "ff2_b": w(p + "output.dense.bias"),
                    "ln2_g": w(p + "output.LayerNorm.weight"),
                    "ln2_b": w(p + "output.LayerNorm.bias"),
                }
            )

        self._layers = layers

    @property
    def loaded(self) -> bool:
        """Whether the weights are in memory."""
        return bool(self._layers)

    @property
    def model_version(self) -> str:
        return self._version

    @property
    def dim(self) -> int:
        return self.config.hidden

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        """Token ids per text, with ``[CLS]``/``[SEP]``, truncated to ``max_seq_length``."""
        return [list(e.ids) for e in self._tokenizer.encode_batch(texts)]

    def embed(self, texts: list[str]) -> Vectors:
        import numpy as np

        if not texts:
            return empty(self.dim)
        self.load()
        ids = self.tokenize(texts)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            out[chunk] = self._forward([ids[i] for i in chunk])
        return l2_normalize(out)

    def _forward(self, batch: list[list[int]]) -> Array:
        import numpy as np

        cfg = self.config
        length = max(len(x) for x in batch)
        tokens = np.zeros((len(batch), length), dtype=np.int64)
        mask = np.zeros((len(batch), length), dtype=np.float32)
        for row, seq in enumerate(batch):
            tokens[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1.0
        x = self._word[tokens] + self._pos[:length][None, :, :] + self._type[0][None, None, :]
        x = _layer_norm(x, *self._emb_ln, cfg.layer_norm_eps)
        bias = ((1.0 - mask) * _MASKED)[:, None, None, :].astype(np.float32)
        heads, head_dim = cfg.heads, cfg.hidden // cfg.heads
        scale = np.float32(1.0 / math.sqrt(head_dim))
        b, n, h = x.shape
        # Dense layers run on (b*n, h) matrices: one GEMM each (numpy's stacked 3-D @ 2-D
        # matmul does not use BLAS for the whole stack and is an order of magnitude slower).
        x = x.reshape(b * n, h)
        for layer in self._layers:
            qkv = x @ layer["qkv_w"] + layer["qkv_b"]
            qkv = np.ascontiguousarray(qkv.reshape(b, n, 3, heads, head_dim).transpose(2, 0, 3, 1, 4))
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores -= scores.max(axis=-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(axis=-1, keepdims=True)
            context = (probs @ v).transpose(0, 2, 1, 3).reshape(b * n, h)
            attn = context @ layer["out_w"] + layer["out_b"]
            x = _layer_norm(attn + x, layer["ln1_g"], layer["ln1_b"], cfg.layer_norm_eps)
            ff = _gelu(x @ layer["ff1_w"] + layer["ff1_b"]) @ layer["ff2_w"] + layer["ff2_b"]
            x = _layer_norm(ff + x, layer["ln2_g"], layer["ln2_b"], cfg.layer_norm_eps)
        x = x.reshape(b, n, h)
        summed = (x * mask[:, :, None]).sum(axis=1)
        counts = np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        pooled: Array = (summed / counts).astype(np.float32)
        return pooled


def _layer_norm(x: Any, gamma: Any, beta: Any, eps: float) -> Array:
    import numpy as np

    mean = x.mean(axis=-1, keepdims=True)
    centered = x - mean
    var = (centered * centered).mean(axis=-1, keepdims=True)
    out: Array = (centered / np.sqrt(var + np.float32(eps)) * gamma + beta).astype(np.float32, copy=False)
    return out


def _gelu(x: Any) -> Array:
    """BERT's exact GELU, ``x * (1 + erf(x / sqrt 2)) / 2``, with a float32-accurate erf.

    erf is Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7, below float32 resolution
    near 1), evaluated in place: this is the hottest elementwise op of the model.
    """
    import numpy as np

    z = x * np.float32(1.0 / math.sqrt(2.0))
    a = np.abs(z)
    t = a * np.float32(0.3275911)
    t += np.float32(1.0)
    np.reciprocal(t, out=t)
    tail = t * np.float32(_ERF_COEFFICIENTS[0])
    for coefficient in _ERF_COEFFICIENTS[1:]:
        tail += np.float32(coefficient)
        tail *= t
    np.multiply(a, a, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    tail *= a  # 1 - erf(|z|)
    np.subtract(np.float32(1.0), tail, out=tail)
    np.copysign(tail, z, out=tail)  # erf(z)
    tail += np.float32(1.0)
    tail *= x
    tail *= np.float32(0.5)
    out: Array = tail.astype(np.float32, copy=False)
    return out


_ERF_COEFFICIENTS = (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)
