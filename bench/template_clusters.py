"""Silhouette and Davies-Bouldin of HDBSCAN clusters of template embeddings on Loghub-2k systems.

For each system folder in ``--data`` the log is templated as ``seismo templates`` does
(``OFFLINE_CONFIG``), every final template is embedded (all-MiniLM-L6-v2, or the hashing
embedder with ``--embedder hash``), and the distinct vectors are clustered once by
``models.clusters.TemplateClusterDetector`` (its HDBSCAN, one refit over all of them).
Printed per system and over the templates of all systems together ("all"): templates,
clusters, the share left as noise, and over the clustered templates the silhouette
(cosine; -1..1, higher is better separated) and the Davies-Bouldin index (0 is best).
Also, for the pooled run, the share of clusters whose templates all come from one system.

Usage: python bench/template_clusters.py --data ../shared/data/loghub2k [--write-docs docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from docblock import write_block
from templates import load_system, run_seismo

from models.clusters import TemplateClusterDetector
from stream_processors.embed import HashEmbedder, MiniLMEmbedder

Matrix = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Quality:
    name: str
    templates: int
    clusters: int
    noise: float
    silhouette: float | None
    davies_bouldin: float | None
    pure: float | None = None


def cluster_labels(vectors: Matrix, min_cluster_size: int) -> npt.NDArray[np.int64]:
    """HDBSCAN labels (-1: noise) of the rows of ``vectors`` (distinct unit vectors), via the detector."""
    n = len(vectors)
    labels = np.full(n, -1, dtype=np.int64)
    if n <= min_cluster_size:
        return labels
    detector = TemplateClusterDetector(window=n, refit_every=n, min_cluster_size=min_cluster_size)
    for row in vectors:
        detector.learn_vector(row)
    for cluster in detector.clusters:
        labels[list(cluster.members)] = cluster.label
    return labels


def quality(name: str, vectors: Matrix, labels: npt.NDArray[np.int64], owners: Sequence[str] = ()) -> Quality:
    from sklearn.metrics import davies_bouldin_score, silhouette_score

    inside = labels >= 0
    found = sorted(set(labels[inside].tolist()))
    sil = dbi = None
    if len(found) >= 2 and inside.sum() > len(found):
        sil = float(silhouette_score(vectors[inside], labels[inside], metric="cosine"))
        dbi = float(davies_bouldin_score(vectors[inside], labels[inside]))
    pure = None
    if owners and found:
        members = [np.flatnonzero(labels == c).tolist() for c in found]
        pure = sum(len({owners[i] for i in m}) == 1 for m in members) / len(found)
    noise = float(1.0 - inside.mean()) if len(labels) else 0.0
    return Quality(name, len(vectors), len(found), noise, sil, dbi, pure)


def distinct(vectors: Matrix) -> list[int]:
    """Indices of the first row of each distinct direction (the detector learns a direction once)."""
    seen: set[bytes] = set()
    keep = []
    for i, row in enumerate(vectors):
        key = np.round(row, 6).tobytes()
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return keep


def render(rows: list[Quality], min_cluster_size: int, embedder: str) -> str:
    def f(x: float | None) -> str:
        return "—" if x is None else f"{x:.3f}"

    out = [
        f"HDBSCAN `min_cluster_size={min_cluster_size}` over {embedder} embeddings of the final templates.\n",
        "| system | templates | clusters | noise | silhouette (cosine) | Davies-Bouldin "
        "| one-system clusters |",
        "|---|---|---|---|---|---|---|",
    ]
    for q in rows:
        out.append(
            f"| {q.name} | {q.templates} | {q.clusters} | {q.noise:.2f} | {f(q.silhouette)} "
            f"| {f(q.davies_bouldin)} | {f(q.pure)} |"
        )
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="folder holding one sub-folder per system")
    parser.add_argument("--embedder", choices=("minilm", "hash"), default="minilm")
    parser.add_argument(
        "--min-cluster-size", type=int, nargs="+", default=[5, 3], help="HDBSCAN min_cluster_size values"
    )
    parser.add_argument("--write-docs", type=Path, default=None, help="Markdown file to write the table into")
    args = parser.parse_args(argv)
    embedder = MiniLMEmbedder() if args.embedder == "minilm" else HashEmbedder()
    systems: dict[str, Matrix] = {}
    for folder in sorted(p for p in args.data.iterdir() if p.is_dir()):
        try:
            contents, _ = load_system(folder)
        except FileNotFoundError as exc:
            print(f"skipped: {exc}", file=sys.stderr)
            continue
        texts = sorted(set(run_seismo(contents).templates))
        vectors = np.asarray(embedder.embed(texts), dtype=np.float64)
        systems[folder.name] = vectors[distinct(vectors)]
    if not systems:
        parser.error(f"no labelled system found in {args.data}")
    pooled = np.vstack(list(systems.values()))
    owners = [name for name, vectors in systems.items() for _ in range(len(vectors))]
    keep = distinct(pooled)
    pooled, owners = pooled[keep], [owners[i] for i in keep]
    tables = []
    for size in args.min_cluster_size:
        rows = [quality(name, vectors, cluster_labels(vectors, size)) for name, vectors in systems.items()]
        rows.append(quality("all", pooled, cluster_labels(pooled, size), owners))
        tables.append(render(rows, size, embedder.model_version))
        print(tables[-1] + "\n")
    table = "\n\n".join(tables)
    if args.write_docs:
        command = (
            "python bench/template_clusters.py --data ../shared/data/loghub2k --write-docs docs/benchmarks.md"
        )
        title = "## Template clusters: silhouette and Davies-Bouldin"
        body = f"{title}\n\nGenerated by `{command}`.\n\n{table}\n"
        write_block(args.write_docs, "template-clusters", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
