"""The deterministic HashEmbedder that unit tests of embeddings build on."""

from __future__ import annotations

import numpy as np
import pytest

from stream_processors.embed import Embedder, HashEmbedder


def test_the_same_text_always_gets_the_same_vector() -> None:
    first = HashEmbedder().embed(["disk full on <PATH>", "user <*> logged in"])
    second = HashEmbedder().embed(["disk full on <PATH>", "user <*> logged in"])
    assert np.array_equal(first, second)


def test_vectors_are_float32_unit_rows_of_the_declared_dim() -> None:
    embedder = HashEmbedder(dim=32)
    vectors = embedder.embed(["a b c", "connection refused", "x"])
    assert vectors.shape == (3, 32)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)


def test_an_empty_batch_gives_an_empty_matrix() -> None:
    assert HashEmbedder(dim=8).embed([]).shape == (0, 8)


def test_texts_sharing_words_are_closer_than_unrelated_texts() -> None:
    a, b, c = HashEmbedder().embed(
        ["connection refused by host <IP>", "connection refused by peer <IP>", "checkpoint written to disk"]
    )
    assert float(a @ b) > float(a @ c)


def test_the_model_version_names_the_dimension() -> None:
    embedder: Embedder = HashEmbedder(dim=16)
    assert embedder.model_version == "hash-v1-d16"
    assert embedder.dim == 16


def test_a_dimension_below_two_is_refused() -> None:
    with pytest.raises(ValueError, match="dim"):
        HashEmbedder(dim=1)
