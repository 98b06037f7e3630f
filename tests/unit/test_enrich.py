from __future__ import annotations

from datetime import UTC, datetime

import anyio

from schemas.models import Event
from stream_processors.embed import CachedEmbedder, HashEmbedder, NoveltyIndex
from stream_processors.normalize.normalizer import Normalizer
from stream_processors.normalize.novelty import NoveltyStep

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def ev(i: int, message: str, kind: str = "log", service: str = "api") -> Event:
    return Event(id=f"e{i}", source="file", kind=kind, timestamp=T0, service=service,
                 severity="info", message=message,
                 metric={"name": "cpu", "value": 1.0} if kind == "metric" else None)


def make(normalizer: Normalizer, inner: HashEmbedder, cache_lru: int = 100) -> NoveltyStep:
    cache = CachedEmbedder(inner, None, lru_size=cache_lru)
    return NoveltyStep(cache, NoveltyIndex(cache.dim, cache.model_version), normalizer)


def run(step: NoveltyStep, normalizer: Normalizer, events: list[Event]) -> list[Event]:
    async def go() -> list[Event]:
        return [await step.score(normalizer.normalize(e)) for e in events]

    return anyio.run(go)


def test_a_services_first_template_is_fully_novel_and_a_repeat_of_a_near_twin_is_not() -> None:
    normalizer = Normalizer()
    step = make(normalizer, HashEmbedder())
    out = run(step, normalizer, [
        ev(1, "user 17 logged in from 10.0.0.1"),
        ev(2, "disk quota exceeded on volume data"),
        ev(3, "user 9 logged in from 10.0.0.2"),
    ])
    assert out[0].novelty == 1.0
    assert out[1].novelty is not None and 0.0 < out[1].novelty <= 1.0
    # the third line matches the first template: its nearest *other* template is the disk line
    assert out[2].template_id == out[0].template_id
    assert out[2].novelty == out[1].novelty


def test_metrics_get_no_novelty_and_the_engine_runs_once_per_template() -> None:
    normalizer = Normalizer()
    inner = HashEmbedder()
    step = make(normalizer, inner)
    out = run(step, normalizer, [ev(i, f"GET /items/{i} 200 in {i}ms") for i in range(50)]
              + [ev(99, "cpu", kind="metric")])
    assert out[-1].novelty is None
    assert len({e.template_id for e in out[:-1]}) == 1
    assert inner.calls == 1


def test_after_a_restart_a_service_is_reseeded_from_its_restored_templates() -> None:
    first = Normalizer()
    step = make(first, HashEmbedder())
    run(step, first, [ev(1, "connection reset by peer"), ev(2, "cache miss for key abc")])
    blob = first.snapshot("api")

    restored = Normalizer()
    restored.restore("api", blob)
    step2 = make(restored, HashEmbedder())
    (again,) = run(step2, restored, [ev(3, "connection reset by peer")])
    assert again.novelty is not None and again.novelty < 1.0  # it knows the other template
