"""Benchmark template embeddings on Loghub-2k: engine speed, cache hits, calls per event.

Every ``X/X_2k.log`` content line in ``--data`` (service = system name, systems
interleaved line by line as one multi-source stream) goes through the template miner
(mask → template), then, in micro-batches of ``--batch`` events as a stream agent
would take them, through a :class:`CachedEmbedder` (numpy all-MiniLM-L6-v2 engine,
Redis at ``Settings().redis``) into the per-service novelty index and the recent-event
search index. Printed per phase:

* ``cold``: empty caches (a fresh Redis namespace); ``cold, 2nd half``: the same run's
  second half (steady state);
* ``restart``: a new process-level LRU, new miner and indexes, the same Redis: every
  template embedded in the cold phase must come from Redis (0 engine calls).

``embeddings/s`` is texts per second inside the engine; ``calls/event`` is engine
calls per event. ``--check-reference`` instead compares the numpy engine with the fp32
torch/transformers reference on ``--reference-templates`` Loghub templates (skipped,
with a message, when torch is not installed).

Usage: python bench/embed.py --data ../shared/data/loghub2k [--batch 64] [--check-reference]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import os
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np

from seismo.settings import Settings
from stream_processors.embed import (
    CachedEmbedder,
    CacheStats,
    Embedder,
    EventSearchIndex,
    HashEmbedder,
    MiniLMEmbedder,
    NoveltyIndex,
    TorchEmbedder,
    torch_available,
)
from stream_processors.normalize.templating import TemplateRegistry, loghub_format


@dataclass(frozen=True)
class Phase:
    name: str
    events: int
    templates: int
    stats: CacheStats
    seconds: float


def load_stream(data: Path, systems: Sequence[str] | None) -> list[tuple[str, str]]:
    """``(service, content)`` of every parsable line, systems interleaved round-robin."""
    folders = sorted(p for p in data.iterdir() if p.is_dir() and (p / f"{p.name}_2k.log").is_file())
    if systems:
        wanted = {s.lower() for s in systems}
        folders = [p for p in folders if p.name.lower() in wanted]
    per_system: list[list[tuple[str, str]]] = []
    for folder in folders:
        fmt = loghub_format(folder.name)
        with (folder / f"{folder.name}_2k.log").open(encoding="utf-8", errors="replace") as handle:
            contents = [c for c in (fmt.content(line) for line in handle) if c]
        per_system.append([(folder.name, c) for c in contents])
    merged = itertools.chain.from_iterable(itertools.zip_longest(*per_system))
    return [pair for pair in merged if pair is not None]


def replay(
    stream: list[tuple[str, str]], cache: CachedEmbedder, batch: int, name: str
) -> tuple[list[Phase], EventSearchIndex]:
    """Run the stream once; phases for the whole run and (when cold) its second half."""
    registry = TemplateRegistry()
    novelty = NoveltyIndex(cache.dim, cache.model_version)
    search = EventSearchIndex(cache, capacity=5_000)
    half = len(stream) // 2
    at_half: CacheStats | None = None
    start = time.perf_counter()
    half_time = start
    for offset in range(0, len(stream), batch):
        if at_half is None and offset >= half:
            at_half, half_time = cache.stats(), time.perf_counter()
        chunk = stream[offset : offset + batch]
        results = [registry.add(service, content) for service, content in chunk]
        vectors = cache.embed_keyed([r.template_id for r in results], [r.template for r in results])
        for (service, _), result, vector in zip(chunk, results, vectors, strict=True):
            novelty.observe(service, result.template_id, vector)
        search.add_many([f"{service}:{offset + i}" for i, (service, _) in enumerate(chunk)], vectors)
    end = time.perf_counter()
    templates = sum(len(registry.miner(s).clusters) for s in registry.services())
    total = cache.stats()
    phases = [Phase(name, len(stream), templates, total, end - start)]
    if at_half is not None and name == "cold":
        second = CacheStats(*(a - b for a, b in zip(_fields(total), _fields(at_half), strict=True)))
        phases.append(Phase("cold, 2nd half", len(stream) - half, templates, second, end - half_time))
    return phases, search


def _template_texts(stream: list[tuple[str, str]]) -> list[str]:
    """The text each template had when first seen (what the cache embedded)."""
    registry = TemplateRegistry()
    return [r.template for r in (registry.add(s, c) for s, c in stream) if r.is_new]


def _fields(stats: CacheStats) -> tuple[float, ...]:
    return (
        stats.lookups,
        stats.hits_lru,
        stats.hits_redis,
        stats.inner_calls,
        stats.texts_embedded,
        stats.inner_seconds,
        stats.redis_errors,
    )


def print_table(phases: list[Phase]) -> None:
    header = (
        f"{'phase':<16}{'events':>8}{'templates':>10}{'engine calls':>13}{'texts emb.':>11}"
        f"{'emb/s':>8}{'LRU hits':>10}{'Redis hits':>11}{'hit ratio':>10}{'calls/event':>12}{'events/s':>10}"
    )
    print(header)
    print("-" * len(header))
    for p in phases:
        s = p.stats
        rate = f"{s.embeddings_per_s:,.0f}" if s.texts_embedded else "-"
        print(
            f"{p.name:<16}{p.events:>8}{p.templates:>10}{s.inner_calls:>13}{s.texts_embedded:>11}"
            f"{rate:>8}{s.hits_lru:>10}{s.hits_redis:>11}{s.hit_ratio:>10.4f}"
            f"{s.inner_calls / p.events:>12.4f}{p.events / p.seconds:>10,.0f}"
        )


def drop_namespace(url: str, namespace: str) -> int:
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()
    return len(keys)


def reference_templates(data: Path, limit: int) -> list[str]:
    """Up to ``limit`` distinct Loghub ground-truth templates, systems taken round-robin."""
    per_system: list[list[str]] = []
    for path in sorted(data.glob("*/*_templates_corrected.csv")):
        with path.open(encoding="utf-8", newline="") as handle:
            per_system.append([row["EventTemplate"] for row in csv.DictReader(handle)])
    merged = itertools.chain.from_iterable(itertools.zip_longest(*per_system))
    return list(dict.fromkeys(t for t in merged if t))[:limit]


def check_reference(data: Path, limit: int) -> int:
    if not torch_available():
        print("check-reference skipped: torch and transformers are not installed")
        print("(pip install torch transformers, then run it again)")
        return 0
    texts = reference_templates(data, limit)
    engine = MiniLMEmbedder()
    engine.load()
    start = time.perf_counter()
    ours = engine.embed(texts)
    ours_s = time.perf_counter() - start
    reference = TorchEmbedder()
    start = time.perf_counter()
    theirs = reference.embed(texts)
    theirs_s = time.perf_counter() - start
    cos = np.sum(ours * theirs, axis=1)
    k = min(10, len(texts) - 1)
    overlaps = [len(a & b) / k for a, b in zip(_neighbours(ours, k), _neighbours(theirs, k), strict=True)]
    print(f"templates compared:              {len(texts)} (Loghub-2k ground truth)")
    print(f"model version:                   {engine.model_version}")
    print(f"max |cos - 1| per vector:        {float(np.max(np.abs(cos - 1))):.3e}")
    print(f"max |a - b| element:             {float(np.max(np.abs(ours - theirs))):.3e}")
    print(f"top-{k} neighbour overlap:        mean {np.mean(overlaps):.4f}, min {np.min(overlaps):.4f}")
    print(f"numpy engine:                    {len(texts) / ours_s:,.0f} texts/s")
    print(f"torch reference (fp32, CPU):     {len(texts) / theirs_s:,.0f} texts/s")
    return 0 if np.mean(overlaps) >= 0.95 else 1


def _neighbours(vectors: np.ndarray, k: int) -> list[set[int]]:
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return [set(row.tolist()) for row in order]


def build_engine(name: str) -> Embedder:
    if name == "numpy":
        engine = MiniLMEmbedder()
        engine.load()  # weights in memory before any timing (they load lazily otherwise)
        return engine
    if name == "torch":
        return TorchEmbedder()
    return HashEmbedder(dim=384)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Template-embedding throughput, cache hit ratio and engine calls per event on "
        "Loghub-2k (cold, then after a restart with the same Redis), or --check-reference.",
    )
    parser.add_argument("--data", required=True, type=Path, help="folder holding one sub-folder per system")
    parser.add_argument("--systems", nargs="*", default=None, help="system folder names (default: all found)")
    parser.add_argument("--batch", type=int, default=64, help="events per micro-batch (default 64)")
    parser.add_argument("--engine", choices=["numpy", "torch", "hash"], default="numpy")
    parser.add_argument("--redis", default=None, help="Redis URL (default: Settings().redis)")
    parser.add_argument("--keep", action="store_true", help="keep the bench's Redis keys afterwards")
    parser.add_argument(
        "--check-reference", action="store_true", help="compare the numpy engine with torch/transformers"
    )
    parser.add_argument(
        "--reference-templates", type=int, default=200, help="templates for --check-reference"
    )
    args = parser.parse_args(argv)
    if args.check_reference:
        return check_reference(args.data, args.reference_templates)
    stream = load_stream(args.data, args.systems)
    if not stream:
        parser.error(f"no *_2k.log files found in {args.data}")
    url = args.redis or Settings().redis
    start = time.perf_counter()
    engine = build_engine(args.engine)
    print(f"engine {args.engine} ({engine.model_version}) loaded in {time.perf_counter() - start:.2f}s")
    namespace = f"seismo:bench:embed:{uuid.uuid4().hex[:12]}"
    print(f"{len(stream)} events, micro-batches of {args.batch}, Redis {url} namespace {namespace}")
    try:
        cold = CachedEmbedder(engine, url, namespace=namespace)
        phases, search = replay(stream, cold, args.batch, "cold")
        cold.close()
        restarted = CachedEmbedder(engine, url, namespace=namespace)
        again, _ = replay(stream, restarted, args.batch, "restart")
        restarted.close()
    finally:
        if not args.keep:
            drop_namespace(url, namespace)
    print()
    print_table(phases + again)
    print()
    restart = again[0].stats
    print(f"restart recomputed {restart.texts_embedded} embeddings ({restart.inner_calls} engine calls)")
    texts = _template_texts(stream)
    start = time.perf_counter()
    engine.embed(texts)
    bulk = time.perf_counter() - start
    print(f"engine, all {len(texts)} first-seen templates in one call: {len(texts) / bulk:,.0f} embeddings/s")
    query = "connection to server failed"
    print(f"search {query!r}: " + ", ".join(f"{e} ({s:.2f})" for e, s in search.search(query, k=3)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
