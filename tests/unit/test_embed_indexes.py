"""NoveltyIndex and EventSearchIndex: semantics, bounds, persistence, rebuild from the cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stream_processors.embed import (
    CachedEmbedder,
    EventSearchIndex,
    HashEmbedder,
    IndexMismatch,
    NoveltyIndex,
    registry_templates,
)
from stream_processors.normalize.templating import TemplateRegistry

EMB = HashEmbedder(dim=32)


def vec(text: str) -> np.ndarray:
    return EMB.embed([text])[0]


def fresh() -> NoveltyIndex:
    return NoveltyIndex(EMB.dim, EMB.model_version)


def test_the_first_template_of_a_service_is_fully_novel() -> None:
    assert fresh().observe("payments", "T1", vec("disk full")) == 1.0


def test_a_near_duplicate_template_has_low_novelty_and_an_unrelated_one_high() -> None:
    index = fresh()
    index.observe("payments", "T1", vec("connection refused by host <IP>"))
    near = index.novelty("payments", "T2", vec("connection refused by peer <IP>"))
    far = index.novelty("payments", "T3", vec("checkpoint written"))
    assert near < far
    assert 0.0 <= near <= 1.0


def test_a_template_is_not_compared_with_itself() -> None:
    index = fresh()
    index.observe("payments", "T1", vec("disk full"))
    assert index.novelty("payments", "T1", vec("disk full")) == 1.0
    index.observe("payments", "T2", vec("disk full again"))
    assert index.novelty("payments", "T1", vec("disk full")) < 1.0


def test_adding_a_template_twice_keeps_one_entry() -> None:
    index = fresh()
    assert index.add("payments", "T1", vec("a"))
    assert not index.add("payments", "T1", vec("a"))
    assert index.templates("payments") == ("T1",)
    assert len(index) == 1


def test_services_do_not_see_each_others_templates() -> None:
    index = fresh()
    index.observe("payments", "T1", vec("disk full"))
    assert index.novelty("auth", "T2", vec("disk full")) == 1.0


def test_novelty_index_survives_save_and_load(tmp_path: Path) -> None:
    index = fresh()
    for service, tid, text in [("a/b", "T1", "x y"), ("a/b", "T2", "z"), ("c", "T3", "w")]:
        index.observe(service, tid, vec(text))
    index.save(tmp_path)
    loaded = NoveltyIndex.load(tmp_path, EMB.model_version)
    assert loaded.services() == ("a/b", "c")
    assert loaded.templates("a/b") == ("T1", "T2")
    probe = vec("x y z")
    assert loaded.novelty("a/b", "T9", probe) == pytest.approx(index.novelty("a/b", "T9", probe))


def test_loading_vectors_of_another_model_raises_index_mismatch(tmp_path: Path) -> None:
    fresh().save(tmp_path)
    with pytest.raises(IndexMismatch):
        NoveltyIndex.load(tmp_path, "other-model")


def test_missing_files_are_rebuilt_from_cached_vectors_without_the_engine(tmp_path: Path) -> None:
    registry = TemplateRegistry()
    for line in ["user alice logged in", "disk sda full", "user bob logged in"]:
        registry.add("auth", line)
    cache = CachedEmbedder(HashEmbedder(dim=32), redis_url=None)
    triples = registry_templates(registry)
    cache.embed_keyed([t[1] for t in triples], [t[2] for t in triples])
    calls = cache.inner_calls
    index = NoveltyIndex.load_or_rebuild(tmp_path / "missing", cache, triples)
    assert cache.inner_calls == calls
    assert set(index.templates("auth")) == {t[1] for t in triples}


def test_load_or_rebuild_adds_templates_the_saved_files_lack(tmp_path: Path) -> None:
    cache = CachedEmbedder(HashEmbedder(dim=32), redis_url=None)
    NoveltyIndex.rebuild_from(cache, [("s", "T1", "a")]).save(tmp_path)
    index = NoveltyIndex.load_or_rebuild(tmp_path, cache, [("s", "T1", "a"), ("s", "T2", "b")])
    assert index.templates("s") == ("T1", "T2")


def search_index(capacity: int = 100, slack: int | None = None) -> EventSearchIndex:
    return EventSearchIndex(HashEmbedder(dim=32), capacity=capacity, slack=slack)


def test_search_finds_the_events_whose_text_is_closest_to_the_query() -> None:
    index = search_index()
    texts = {"e1": "connection refused by host", "e2": "disk full on volume", "e3": "user logged in"}
    for event_id, text in texts.items():
        index.add(event_id, vec(text))
    hits = index.search("disk volume full", k=2)
    assert hits[0][0] == "e2"
    assert len(hits) == 2
    assert hits[0][1] >= hits[1][1]


def test_search_of_an_empty_index_returns_nothing() -> None:
    assert search_index().search("anything", k=5) == []


def test_adding_an_event_twice_indexes_it_once() -> None:
    index = search_index()
    assert index.add("e1", vec("a"))
    assert not index.add("e1", vec("a"))
    assert index.add_many(["e2", "e2", "e1"], EMB.embed(["b", "b", "a"])) == 1
    assert index.event_ids() == ("e1", "e2")


def test_only_the_most_recent_events_are_kept_and_evictions_rebuild() -> None:
    index = search_index(capacity=3, slack=2)
    for i in range(10):
        index.add(f"e{i}", vec(f"event number {i}"))
    assert index.event_ids() == ("e7", "e8", "e9")
    assert len(index) == 3
    assert index.rebuilds >= 2
    assert {e for e, _ in index.search("event number", k=10)} == {"e7", "e8", "e9"}


def test_search_index_survives_save_and_load(tmp_path: Path) -> None:
    index = search_index(capacity=3, slack=5)
    for i in range(5):
        index.add(f"e{i}", vec(f"event {i} text"))
    index.save(tmp_path)
    loaded = EventSearchIndex.load(tmp_path, HashEmbedder(dim=32), capacity=3)
    assert loaded.event_ids() == ("e2", "e3", "e4")
    assert loaded.search("event 3 text", k=1) == index.search("event 3 text", k=1)


def test_search_index_is_rebuilt_from_cached_template_vectors() -> None:
    cache = CachedEmbedder(HashEmbedder(dim=32), redis_url=None)
    events = [("e1", "T1", "disk full"), ("e2", "T2", "user logged in"), ("e3", "T1", "disk full")]
    index = EventSearchIndex.rebuild_from(cache, events, capacity=10)
    assert cache.texts_embedded == 2
    assert {e for e, _ in index.search("disk full", k=2)} == {"e1", "e3"}


def test_events_of_one_key_share_one_row_and_come_back_grouped() -> None:
    index = search_index()
    texts = {"T1": "disk full on volume", "T2": "user logged in"}
    for i, key in enumerate(["T1", "T2", "T1", "T1"]):
        index.add(f"e{i}", vec(texts[key]), key=key)
    assert (len(index), index.rows) == (4, 2)
    assert index.events_of("T1") == ("e0", "e2", "e3")
    assert [k for k, _ in index.search_keys(vec("disk full"), k=5)] == ["T1", "T2"]
    assert [e for e, _ in index.search_vector(vec("disk full"), k=3)] == ["e3", "e2", "e0"]


def test_a_key_leaves_the_results_with_its_last_event_and_its_row_is_removed_in_batches() -> None:
    gone: list[tuple[str, str]] = []
    index = EventSearchIndex(HashEmbedder(dim=32), capacity=3, slack=1,
                             on_evict=lambda e, k: gone.append((e, k)))
    index.add_many(["a1", "b1", "a2"], EMB.embed(["alpha", "beta", "alpha"]), ["A", "B", "A"])
    assert index.evict_oldest(1) == ["a1"] and gone == [("a1", "A")]
    assert index.keys() == ("A", "B")  # A still has a2
    index.add_many(["c1", "d1"], EMB.embed(["gamma", "delta"]), ["C", "D"])  # capacity: evicts b1
    assert gone[-1] == ("b1", "B") and index.keys() == ("A", "C", "D")
    assert {k for k, _ in index.search_keys(vec("beta"), k=10)} == {"A", "C", "D"}
    assert (index.rows, index.rebuilds) == (4, 0)  # B's row is hidden; one dead row is within the slack
    index.add("e1", vec("epsilon"), key="E")  # evicts a2: A is dead too, two dead rows > slack
    assert gone[-1] == ("a2", "A") and index.event_ids() == ("c1", "d1", "e1")
    assert (index.rows, index.rebuilds) == (3, 1)
    assert {k for k, _ in index.search_keys(vec("alpha"), k=10)} == {"C", "D", "E"}


def test_a_key_that_comes_back_reuses_its_row() -> None:
    index = EventSearchIndex(HashEmbedder(dim=32), capacity=1, slack=10)
    index.add("e1", vec("alpha"), key="A")
    index.add("e2", vec("beta"), key="B")
    index.add("e3", vec("alpha"), key="A")
    assert index.rows == 2 and index.keys() == ("A",)
    assert [k for k, _ in index.search_keys(vec("beta"), k=5)] == ["A"]


def test_keys_survive_save_and_load(tmp_path: Path) -> None:
    index = search_index()
    index.add_many(["e1", "e2", "e3"], EMB.embed(["alpha", "beta", "alpha"]), ["A", "B", "A"])
    index.save(tmp_path)
    loaded = EventSearchIndex.load(tmp_path, HashEmbedder(dim=32))
    assert loaded.events_of("A") == ("e1", "e3") and loaded.rows == 2
    assert loaded.search_keys(vec("beta"), k=2) == index.search_keys(vec("beta"), k=2)
