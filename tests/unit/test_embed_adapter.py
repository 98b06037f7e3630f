"""The embedding adapter: trained contrastively it retrieves templates better, it is a new model
version, its file is data (never a pickle) checked against the base model, and the CLI judges it."""

from __future__ import annotations

import inspect
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner, Result

from seismo.cli import app
from seismo.settings import Settings
from stream_processors.embed.adapter import (
    AdaptedEmbedder,
    AdapterError,
    TrainConfig,
    load_adapter,
    retrieval_accuracy,
    save_adapter,
    train,
)
from stream_processors.embed.engine import configured_embedder
from stream_processors.embed.finetune import corpus
from stream_processors.embed.hashing import HashEmbedder
from stream_processors.embed.minilm import MiniLMEmbedder


def confusable(n_templates: int, per: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """Template vectors, and line vectors = their template + a strong shared nuisance direction
    scaled at random per line: plain cosine often picks the template most aligned with the nuisance."""
    rng = np.random.default_rng(seed)
    d = 24
    templates = rng.normal(size=(n_templates, d)).astype(np.float32)
    nuisance = rng.normal(size=d).astype(np.float32)
    nuisance /= np.linalg.norm(nuisance)
    labels = [f"t{k}" for k in range(n_templates) for _ in range(per)]
    lines = np.stack([templates[int(label[1:])] + rng.uniform(2, 6) * 4 * nuisance for label in labels])
    positives = np.stack([templates[int(label[1:])] for label in labels])
    return lines.astype(np.float32), positives, labels, templates


def test_a_contrastively_trained_adapter_retrieves_the_right_template_where_plain_cosine_fails() -> None:
    lines, positives, labels, templates = confusable(30, 6, seed=1)
    names = [f"t{k}" for k in range(30)]
    test_lines, _, test_labels, _ = confusable(30, 6, seed=1)  # same templates and nuisance ...
    rng = np.random.default_rng(7)  # ... fresh nuisance scales for held-out lines
    own = np.stack([templates[int(lab[1:])] for lab in test_labels])
    test_lines = own + (test_lines - own) * rng.uniform(0.5, 1.5, (180, 1))
    w = train(lines, positives, labels, TrainConfig(steps=300, batch=30))
    base = retrieval_accuracy(test_lines, test_labels, templates, names)
    adapted = retrieval_accuracy(test_lines, test_labels, templates, names, w)
    assert base < 0.6, f"the fixture must confuse plain cosine (base {base:.2f})"
    assert adapted >= base + 0.3, (base, adapted)


def test_training_needs_two_templates_and_one_row_per_line() -> None:
    v = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match="at least two"):
        train(v, v, ["a", "a", "a"])
    with pytest.raises(ValueError, match="one row each"):
        train(v, v[:2], ["a", "b", "c"])


def test_the_adapted_embedder_is_its_own_model_version_and_gives_unit_vectors() -> None:
    inner = HashEmbedder(16)
    identity = AdaptedEmbedder(inner, np.eye(16, dtype=np.float32))
    texts = ["connection reset by peer", "disk full on /var"]
    assert np.allclose(identity.embed(texts), inner.embed(texts), atol=1e-6)
    skew = np.eye(16, dtype=np.float32)
    skew[0, 1] = 3.0
    adapted = AdaptedEmbedder(inner, skew)
    assert adapted.model_version.startswith(inner.model_version + "+adapter:")
    assert adapted.model_version != identity.model_version
    assert np.allclose(np.linalg.norm(adapted.embed(texts), axis=1), 1.0, atol=1e-5)
    with pytest.raises(AdapterError, match="8x8"):
        AdaptedEmbedder(inner, np.eye(8, dtype=np.float32))


def test_an_adapter_file_round_trips_and_is_refused_when_it_is_not_one_for_this_model(tmp_path: Path) -> None:
    inner = HashEmbedder(16)
    w = np.eye(16, dtype=np.float32) * 2
    path = tmp_path / "a.npz"
    save_adapter(path, w, {"base": inner.model_version, "lines": 3})
    loaded, meta = load_adapter(path, inner.model_version, 16)
    assert np.array_equal(loaded, w) and meta["lines"] == 3
    with pytest.raises(AdapterError, match="seismo embed finetune"):
        load_adapter(tmp_path / "missing.npz", inner.model_version, 16)
    with pytest.raises(AdapterError, match="trained on"):
        load_adapter(path, "all-MiniLM-L6-v2@9/256", 16)
    with pytest.raises(AdapterError, match=r"expected \(32, 32\)"):
        load_adapter(path, inner.model_version, 32)
    hostile = tmp_path / "hostile.npz"
    with hostile.open("wb") as fh:
        np.savez(fh, w=np.array([object()], dtype=object), meta=np.array("{}"))
    with pytest.raises(AdapterError, match="not a Seismo adapter"):
        load_adapter(hostile, inner.model_version, 16)
    plain_pickle = tmp_path / "p.npz"
    plain_pickle.write_bytes(pickle.dumps({"w": w}))
    with pytest.raises(AdapterError, match="not a Seismo adapter"):
        load_adapter(plain_pickle, inner.model_version, 16)


def test_the_configured_embedder_goes_through_the_adapter_the_settings_name(tmp_path: Path) -> None:
    base = configured_embedder(Settings(embedder="hash"))
    path = tmp_path / "a.npz"
    save_adapter(path, np.eye(base.dim, dtype=np.float32), {"base": base.model_version})
    adapted = configured_embedder(Settings(embedder="hash", embed_adapter=path))
    assert isinstance(adapted, AdaptedEmbedder) and adapted.model_version != base.model_version
    with pytest.raises(AdapterError):
        configured_embedder(Settings(embedder="hash", embed_adapter=tmp_path / "nope.npz"))


def log_file(path: Path, events: int, per: int, seed: int = 3) -> Path:
    rng = random.Random(seed)
    shapes = [
        "Accepted password for {u} from 10.0.{a}.{b} port {p} ssh2",
        "Connection closed by 10.0.{a}.{b} [preauth]",
        "session opened for user {u} by (uid=0)",
        "Failed password for invalid user {u} from 10.0.{a}.{b} port {p} ssh2",
        "pam_unix(sshd:auth): authentication failure; rhost=10.0.{a}.{b} user={u}",
        "Received disconnect from 10.0.{a}.{b}: 11: Bye Bye [preauth]",
    ][:events]
    lines = [s.format(u=rng.choice(["root", "admin", "guest", "oracle"]), a=rng.randrange(255),
                      b=rng.randrange(255), p=rng.randrange(1024, 65535)) for s in shapes for _ in range(per)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_the_corpus_keeps_lines_per_template_and_holds_some_out(tmp_path: Path) -> None:
    with log_file(tmp_path / "auth.log", 6, 30).open(encoding="utf-8") as fh:
        data = corpus(fh, per_template=10)
    assert data.template_count >= 4
    counts = {t: data.templates.count(t) for t in set(data.templates)}
    assert max(counts.values()) <= 10
    assert 0 < sum(data.held_out) < len(data.lines)


def invoke(*args: str | Path) -> Result:
    kwargs: dict[str, Any] = (
        {"mix_stderr": False} if "mix_stderr" in inspect.signature(CliRunner.__init__).parameters else {}
    )
    return CliRunner(**kwargs).invoke(app, [str(a) for a in args])


def test_seismo_embed_finetune_judges_the_adapter_and_writes_a_file_the_worker_loads(tmp_path: Path) -> None:
    source = log_file(tmp_path / "auth.log", 6, 12)
    out = tmp_path / "adapter.npz"
    result = invoke("embed", "finetune", "--from", source, "--out", out, "--steps", "40", "--force")
    assert result.exit_code == 0, result.output + result.stderr
    assert "nearest-template accuracy on the held-out lines: base" in result.stdout
    assert f"SEISMO_EMBED_ADAPTER={out}" in result.stdout
    base = MiniLMEmbedder()
    w, meta = load_adapter(out, base.model_version, base.dim)
    assert meta["source"] == "auth.log" and meta["steps"] == 40 and w.shape == (384, 384)


def test_seismo_embed_finetune_explains_inputs_it_cannot_learn_from(tmp_path: Path) -> None:
    one = log_file(tmp_path / "one.log", 1, 20)
    result = invoke("embed", "finetune", "--from", one, "--out", tmp_path / "x.npz")
    assert result.exit_code == 1 and "at least two" in result.stderr
    assert not (tmp_path / "x.npz").exists()
    result = invoke("embed", "finetune", "--from", one, "--format", "loghub:Nope")
    assert result.exit_code == 2 and "unknown Loghub system 'Nope'" in result.stderr
    result = invoke("embed", "finetune", "--from", tmp_path / "absent.log")
    assert result.exit_code == 2 and "does not exist" in result.stderr
