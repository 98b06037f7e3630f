"""Serialisation of miner state: versioned JSON, stable across processes and versions.

The snapshot holds the templates in creation order (id, routing key, tokens,
wildcards, size) and the similarity setting. Caches are not saved: they are pure
memoisation, so a restored miner continues exactly as the original would have.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from stream_processors.normalize.templating.exceptions import InvalidState

if TYPE_CHECKING:
    from stream_processors.normalize.templating.miner import Cluster, TemplateMiner

FORMAT = "seismo.templating.miner"
VERSION = 1


def snapshot(miner: TemplateMiner) -> dict[str, Any]:
    """A JSON-ready dict of ``miner``'s templates. Pure; does not touch the miner."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "similarity": miner.config.similarity,
        "clusters": [
            {
                "id": c.id,
                "key": c.key,
                "tokens": c.tokens,
                "wild": [None if w is None else list(w) for w in c.wild],
                "size": c.size,
            }
            for c in miner.clusters.values()
        ],
    }


def restore(miner: TemplateMiner, data: dict[str, Any]) -> list[Cluster]:
    """Rebuild the clusters of a :func:`snapshot`, in creation order.

    Raises :class:`InvalidState` when ``data`` is not a snapshot of a known version.
    """
    from stream_processors.normalize.templating.miner import Cluster

    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InvalidState("not a Seismo template-miner snapshot")
    if data.get("version") != VERSION:
        raise InvalidState(f"unsupported snapshot version {data.get('version')!r}")
    if data.get("similarity") != miner.config.similarity:
        raise InvalidState(
            f"snapshot similarity {data.get('similarity')} != configured "
            f"{miner.config.similarity}; restore with the same MinerConfig"
        )
    try:
        clusters = []
        for item in data["clusters"]:
            tokens = [str(t) for t in item["tokens"]]
            wild = [None if w is None else (str(w[0]), str(w[1])) for w in item["wild"]]
            if len(wild) != len(tokens):
                raise InvalidState(f"template {item['id']}: tokens and wildcards differ")
            cluster = Cluster(str(item["id"]), str(item["key"]), tokens, wild)
            cluster.size = int(item["size"])
            clusters.append(cluster)
    except (KeyError, TypeError, IndexError, ValueError) as exc:
        raise InvalidState(f"malformed snapshot: {exc!r}") from exc
    return clusters


def encode(data: dict[str, Any]) -> bytes:
    """Compact, key-sorted UTF-8 JSON (byte-identical for identical states)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")


def decode(blob: bytes) -> dict[str, Any]:
    """Parse :func:`encode` output; raises :class:`InvalidState` on bad bytes."""
    try:
        data = json.loads(blob.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidState(f"snapshot is not UTF-8 JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidState("snapshot is not a JSON object")
    return data
