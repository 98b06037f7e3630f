"""``seismo embed finetune --method full``: a fine-tuned model folder the numpy engine serves.

The folder checks and the serving path run everywhere (a folder is built from the base weights
with numpy); training needs torch (the ``deep`` extra) and is skipped without it, like the
autoencoder's tests."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from seismo.settings import Settings
from stream_processors.embed.adapter import AdapterError
from stream_processors.embed.engine import configured_embedder
from stream_processors.embed.finetune import corpus
from stream_processors.embed.finetune_full import (
    WEIGHTS,
    FullConfig,
    check_finetuned,
    save_model,
    torch_module,
    train_full,
)
from stream_processors.embed.minilm import MiniLMEmbedder
from stream_processors.embed.model import MARKER, model_dir
from tests.unit.test_embed_adapter import invoke, log_file

TEXTS = ["Connection refused to <*> port <*>", "user <*> logged in from <*>", "disk /dev/sda1 is 97% full"]
needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                 reason="needs torch (the deep extra)")


def nudged_folder(tmp_path: Path) -> Path:
    """A fine-tuned folder without torch: the base weights with one layer's output bias moved (not
    by a constant: the LayerNorm after it would take that out)."""
    base = model_dir()
    state = load_file(str(base / WEIGHTS))
    name = next(k for k in state if k.endswith("encoder.layer.5.output.dense.bias"))
    state[name] = state[name] + np.linspace(-1, 1, state[name].size, dtype=np.float32)
    out = tmp_path / "ft"
    save_model(out, base, state, {"steps": 0})
    return out


def test_a_fine_tuned_folder_is_its_own_model_version_and_the_numpy_engine_serves_it(tmp_path: Path) -> None:
    folder = nudged_folder(tmp_path)
    base = MiniLMEmbedder()
    assert check_finetuned(folder, base.model_version) == MiniLMEmbedder(folder).model_version
    tuned = configured_embedder(Settings(embedder="minilm", embed_adapter=folder))
    assert tuned.model_version.startswith(base.model_version + "+ft:")
    a, b = base.embed(TEXTS), tuned.embed(TEXTS)
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(a, b, atol=1e-3), "the served vectors must come from the folder's weights"
    assert (folder / "tokenizer.json").is_file() and not (folder.parent / "ft.tmp").exists()


def test_a_folder_that_is_not_a_usable_fine_tune_is_refused_with_the_reason(tmp_path: Path) -> None:
    folder = nudged_folder(tmp_path)
    version = MiniLMEmbedder().model_version
    with pytest.raises(AdapterError, match="hash"):
        configured_embedder(Settings(embedder="hash", embed_adapter=folder))
    marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    (folder / MARKER).write_text(json.dumps({**marker, "base": "other-model@1/128"}), encoding="utf-8")
    with pytest.raises(AdapterError, match="fine-tuned from other-model"):
        check_finetuned(folder, version)
    (folder / MARKER).write_text(json.dumps(marker), encoding="utf-8")
    (folder / WEIGHTS).write_bytes((folder / WEIGHTS).read_bytes()[:1000])  # an interrupted copy
    with pytest.raises(AdapterError, match="interrupted copy"):
        check_finetuned(folder, version)
    (folder / MARKER).unlink()
    with pytest.raises(AdapterError, match="not one `seismo embed finetune --method full` wrote"):
        configured_embedder(Settings(embedder="minilm", embed_adapter=folder))


def test_method_full_without_torch_says_which_extra_it_needs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch → ImportError
    with pytest.raises(AdapterError, match=r"seismo\[deep\]"):
        torch_module()
    source = log_file(tmp_path / "auth.log", 6, 12)
    result = invoke("embed", "finetune", "--from", source, "--method", "full", "--out", tmp_path / "m")
    assert result.exit_code == 1 and "seismo[deep]" in result.stderr, result.stdout + result.stderr
    assert not (tmp_path / "m").exists() and not (tmp_path / "m.candidate").exists()
    result = invoke("embed", "finetune", "--from", source, "--method", "lora")
    assert result.exit_code == 2 and "use one of head, full" in result.stderr


@needs_torch
def test_the_torch_forward_pass_is_the_numpy_engines() -> None:
    from stream_processors.embed.finetune_full import _Model
    from stream_processors.embed.model import ModelConfig

    torch, base = torch_module(), MiniLMEmbedder()
    model = _Model(torch, load_file(str(model_dir() / WEIGHTS)), ModelConfig.read(model_dir()), 2)
    with torch.no_grad():
        got = model.encode(base.tokenize(TEXTS)).numpy()
    assert np.abs(got - base.embed(TEXTS)).max() < 1e-5
    assert all(n.startswith(("encoder.layer.4.", "encoder.layer.5.")) for n in model.trained)


@needs_torch
def test_full_fine_tuning_trains_the_top_layer_and_the_numpy_engine_serves_the_result(tmp_path: Path) -> None:
    with log_file(tmp_path / "auth.log", 6, 12).open(encoding="utf-8") as fh:
        data = corpus(fh, per_template=10)
    heard: list[int] = []
    result = train_full(data, tmp_path / "ft", FullConfig(steps=3, batch=4, layers=1, lr=1e-4),
                        progress=lambda step, loss: heard.append(step))
    assert heard == [1, 2, 3] and result.folder == tmp_path / "ft"
    base_state, tuned_state = load_file(str(model_dir() / WEIGHTS)), load_file(str(result.folder / WEIGHTS))
    changed = {k for k in base_state if not np.array_equal(base_state[k], tuned_state[k])}
    assert changed and all(".encoder.layer.5." in f".{k}" for k in changed), sorted(changed)[:5]
    served = MiniLMEmbedder(result.folder)
    assert served.model_version == result.version != MiniLMEmbedder().model_version
    assert not np.allclose(served.embed(TEXTS), MiniLMEmbedder().embed(TEXTS), atol=1e-6)


@needs_torch
def test_seismo_embed_finetune_method_full_keeps_a_better_model_folder(tmp_path: Path) -> None:
    source = log_file(tmp_path / "auth.log", 6, 12)
    out = tmp_path / "model"
    result = invoke("embed", "finetune", "--from", source, "--method", "full", "--out", out, "--steps", "4",
                    "--force")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "fine-tuned" in result.stdout and f"SEISMO_EMBED_ADAPTER={out}" in result.stdout
    meta = json.loads((out / MARKER).read_text(encoding="utf-8"))
    assert meta["source"] == "auth.log" and meta["steps"] == 4 and "adapted_accuracy" in meta
    assert not (tmp_path / "model.candidate").exists()
    configured_embedder(Settings(embedder="minilm", embed_adapter=out))  # loads: the check passes
