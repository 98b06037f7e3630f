"""``seismo embed finetune --method full``: contrastive fine-tuning of the MiniLM transformer itself.

The pairs and the objective are the head's (:mod:`.adapter`): each training line against its own
template, InfoNCE with in-batch negatives, one line per template in a batch.  Here the gradient
reaches the transformer: the top ``layers`` encoder layers are trained (AdamW, torch on CPU),
the embeddings and the layers below stay as they are.  The forward pass is this module's own
torch copy of the numpy engine's (:mod:`.minilm`), read from the same ``model.safetensors``; no
``transformers`` is needed.

The result is a model folder: the base folder's configuration and tokenizer, the new
``model.safetensors`` (same tensor names), and ``seismo-finetune.json`` (:data:`MARKER`) naming
the base model version it was trained from and the digest of its weights.  The numpy engine runs
it like the base model (``SEISMO_EMBED_ADAPTER`` pointing at the folder), so torch is needed to
train, never to serve; the digest makes its vectors a model version of their own in every cache.
It is judged the way the head is: nearest-template accuracy of the held-out lines, computed by
the numpy engine on the written folder (what will be served), beside the base model's.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import os
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stream_processors.embed.adapter import AdapterError
from stream_processors.embed.finetune import Corpus
from stream_processors.embed.model import MARKER, ModelConfig, finetuned_version, model_dir, model_version

if TYPE_CHECKING:
    import numpy.typing as npt

FORMAT = "seismo-embed-finetune/1"
WEIGHTS = "model.safetensors"


@dataclass(frozen=True)
class FullConfig:
    steps: int = 150
    batch: int = 32  # templates per step (one line each): 2 x batch texts through the model
    layers: int = 2  # top encoder layers trained; the rest of the model is frozen
    lr: float = 3e-5
    temperature: float = 0.05
    seed: int = 0


@dataclass(frozen=True)
class FullResult:
    folder: Path  # the written model folder (under the caller's staging path until kept)
    version: str
    final_loss: float


def torch_module() -> Any:
    """``torch``, imported on demand; raises AdapterError naming the extra when it is missing."""
    try:
        return importlib.import_module("torch")
    except ImportError:
        raise AdapterError("--method full needs torch: pip install 'seismo[deep]' (or use the default "
                           "--method head, which needs no torch)") from None


class _Model:
    """The MiniLM encoder + mean pooling in torch, from the safetensors tensors (names kept)."""

    def __init__(self, torch: Any, raw: dict[str, npt.NDArray[Any]], config: ModelConfig,
                 layers: int) -> None:
        self.torch, self.config = torch, config
        self.prefix = "bert." if "bert.embeddings.word_embeddings.weight" in raw else ""
        first_trained = config.layers - max(0, min(layers, config.layers))
        self.tensors: dict[str, Any] = {}
        self.trained: list[str] = []
        for name, value in raw.items():
            tensor = torch.from_numpy(value.astype("float32", copy=True))
            local = name[len(self.prefix):] if name.startswith(self.prefix) else name
            parts = local.split(".")
            train = local.startswith("encoder.layer.") and int(parts[2]) >= first_trained
            tensor.requires_grad_(train)
            self.tensors[local] = tensor
            if train:
                self.trained.append(local)

    def parameters(self) -> list[Any]:
        return [self.tensors[n] for n in self.trained]

    def state(self) -> dict[str, npt.NDArray[Any]]:
        """Every tensor as numpy under its name in the base file."""
        return {self.prefix + n: t.detach().cpu().numpy() for n, t in self.tensors.items()}

    def encode(self, ids: list[list[int]]) -> Any:
        """L2-normalised mean-pooled vectors of the token id lists (the numpy engine's forward)."""
        torch, f, cfg, t = self.torch, self.torch.nn.functional, self.config, self.tensors

        def lin(x: Any, name: str) -> Any:
            return f.linear(x, t[name + ".weight"], t[name + ".bias"])

        def norm(x: Any, name: str) -> Any:
            return f.layer_norm(x, (cfg.hidden,), t[name + ".weight"], t[name + ".bias"], cfg.layer_norm_eps)

        length = max(len(x) for x in ids)
        tokens = torch.zeros((len(ids), length), dtype=torch.long)
        mask = torch.zeros((len(ids), length), dtype=torch.float32)
        for row, seq in enumerate(ids):
            tokens[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[row, : len(seq)] = 1.0
        emb = "embeddings."
        x = (t[emb + "word_embeddings.weight"][tokens] + t[emb + "position_embeddings.weight"][:length]
             + t[emb + "token_type_embeddings.weight"][0])
        x = norm(x, emb + "LayerNorm")
        bias = ((1.0 - mask) * -1e30)[:, None, None, :]
        heads, head_dim = cfg.heads, cfg.hidden // cfg.heads
        b, n, h = x.shape
        for i in range(cfg.layers):
            p = f"encoder.layer.{i}."
            q, k, v = (lin(x, p + f"attention.self.{name}").view(b, n, heads, head_dim).transpose(1, 2)
                       for name in ("query", "key", "value"))
            probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(head_dim) + bias, dim=-1)
            context = (probs @ v).transpose(1, 2).reshape(b, n, h)
            x = norm(lin(context, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
            ff = lin(f.gelu(lin(x, p + "intermediate.dense")), p + "output.dense")
            x = norm(ff + x, p + "output.LayerNorm")
        pooled = (x * mask[:, :, None]).sum(dim=1) / mask.sum(dim=1, keepdim=True).clamp(min=1e-9)
        return f.normalize(pooled, dim=1)


def train_full(data: Corpus, out: Path, config: FullConfig | None = None, base: Path | None = None,
               progress: Callable[[int, float], None] | None = None) -> FullResult:
    """Fine-tune on the corpus' training lines and write the model folder ``out`` (replaced if it
    exists).  Raises AdapterError without torch, ValueError with fewer than two templates."""
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    config = config or FullConfig()
    torch = torch_module()
    torch.manual_seed(config.seed)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    torch.set_num_threads(cores)
    folder = model_dir(base)
    model_config = ModelConfig.read(folder)
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=model_config.max_seq_length)
    model = _Model(torch, load_file(str(folder / WEIGHTS)), model_config, config.layers)
    by: dict[str, list[str]] = {}
    for line, template, held in zip(data.lines, data.templates, data.held_out, strict=True):
        if not held:
            by.setdefault(template, []).append(line)
    if len(by) < 2:
        raise ValueError(f"{len(by)} template(s) to train on: fine-tuning needs at least two")
    keys = sorted(by)
    rng = random.Random(config.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)
    losses: list[float] = []
    for step in range(1, config.steps + 1):
        picked = rng.sample(keys, min(config.batch, len(keys)))
        anchors = [rng.choice(by[k]) for k in picked]
        ids = [list(e.ids) for e in tokenizer.encode_batch(anchors + picked)]
        vectors = model.encode(ids)
        a, p = vectors[: len(picked)], vectors[len(picked):]
        logits = a @ p.T / config.temperature
        loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(picked)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(step, losses[-1])
    version = save_model(out, folder, model.state(), {
        "steps": config.steps, "layers": config.layers, "lr": config.lr, "seed": config.seed,
    })
    tail = losses[-20:]
    return FullResult(out, version, sum(tail) / len(tail) if tail else 0.0)


def weights_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:12]


def save_model(out: Path, base: Path, state: dict[str, npt.NDArray[Any]], meta: dict[str, Any]) -> str:
    """Write a model folder at ``out`` (atomically: staged beside it, then renamed): ``base``'s
    files, ``state`` as its weights, and the marker.  Returns the folder's model version."""
    from safetensors.numpy import save_file

    stage = out.with_name(out.name + ".tmp")
    shutil.rmtree(stage, ignore_errors=True)
    skip = shutil.ignore_patterns(WEIGHTS, MARKER, "*.bin", "*.onnx", "*.h5", "*.msgpack", ".gitattributes",
                                  "onnx", "openvino")
    shutil.copytree(base, stage, ignore=skip)
    save_file(state, str(stage / WEIGHTS))
    config = ModelConfig.read(base)
    marker = {"format": FORMAT, "base": model_version(base, config.max_seq_length),
              "weights": weights_digest(stage / WEIGHTS), **meta}
    (stage / MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    stage.rename(out)
    return model_version(out, config.max_seq_length)


def check_finetuned(folder: Path, base_version: str) -> str:
    """The model version of the fine-tuned folder ``folder``, after checking it was trained from
    ``base_version`` and that its weights are the ones its marker names.  Raises AdapterError
    naming the folder and what is wrong."""
    marker = folder / MARKER
    if not marker.is_file():
        raise AdapterError(f"{folder} is a folder but not one `seismo embed finetune --method full` wrote "
                           f"(no {MARKER}); SEISMO_EMBED_ADAPTER takes an adapter file or such a folder")
    try:
        meta = json.loads(marker.read_text(encoding="utf-8"))
        base, weights = str(meta["base"]), str(meta["weights"])
        if meta.get("format") != FORMAT:
            raise ValueError(f"format {meta.get('format')!r}, expected {FORMAT}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AdapterError(f"{marker} cannot be read: {exc}") from None
    if base != base_version:
        raise AdapterError(f"{folder} was fine-tuned from {base}, the embedder is {base_version}: "
                           "fine-tune it again with `seismo embed finetune --method full`")
    if not (folder / WEIGHTS).is_file() or weights_digest(folder / WEIGHTS) != weights:
        raise AdapterError(f"{folder / WEIGHTS} is missing or not the weights {MARKER} names "
                           "(an interrupted copy?): fine-tune again or copy the whole folder")
    return finetuned_version(base, weights)
