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
    from stream_processors.normalize.templating.groups import Cluster
    from stream_processors.normalize.templating.miner import TemplateMiner

FORMAT = "seismo.templating.miner"
VERSION = 2
"""Version 2 adds template groups (shapes joined across token counts or words) and
the words seen at soft-clash positions; version-1 snapshots still load (each shape
its own template, no words seen), whatever similarity they were taken with (the
default changed with version 2; their templates carry on under today's settings),
and registry snapshots of either version too."""
VERSIONS = (1, 2)


def snapshot(miner: TemplateMiner) -> dict[str, Any]:
    """A JSON-ready dict of ``miner``'s templates. Pure; does not touch the miner."""
    config = miner.config
    items = []
    for c in miner.shapes():
        item: dict[str, Any] = {
            "id": c.id,
            "key": c.key,
            "tokens": c.tokens,
            "wild": [None if w is None else list(w) for w in c.wild],
            "size": c.size,
        }
        if c.root is not c:
            item["root"] = c.root.id
        elif len(c.members) > 1:
            item["members"] = [m.id for m in c.members]
            item["text"] = c.text
        if c.anchor is not None:
            item["anchor"] = c.anchor.id
        if c.seen:
            item["seen"] = [[p, words] for p, words in sorted(c.seen.items())]
        items.append(item)
    return {
        "format": FORMAT,
        "version": VERSION,
        "similarity": config.similarity,
        "value_after": config.value_after,
        "join_similarity": config.join_similarity,
        "merge_live": config.merge_live,
        "clusters": items,
    }


def restore(miner: TemplateMiner, data: dict[str, Any]) -> list[Cluster]:
    """Rebuild the shapes of a :func:`snapshot`, in creation order, groups linked.

    Raises :class:`InvalidState` when ``data`` is not a snapshot of a known version
    or was taken with another configuration.
    """
    from stream_processors.normalize.templating.groups import Cluster

    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InvalidState("not a Seismo template-miner snapshot")
    version = data.get("version")
    if version not in VERSIONS:
        raise InvalidState(f"unsupported snapshot version {version!r}")
    config = miner.config
    wanted: dict[str, float | bool | None] = {}
    if version >= 2:  # a version-1 snapshot is migrated: its templates, today's settings
        wanted.update(
            similarity=config.similarity,
            value_after=config.value_after,
            join_similarity=config.join_similarity,
            merge_live=config.merge_live,
        )
    for name, value in wanted.items():
        if data.get(name) != value:
            raise InvalidState(
                f"snapshot {name} {data.get(name)} != configured {value}; "
                "restore with the same MinerConfig"
            )
    try:
        shapes: dict[str, Cluster] = {}
        for seq, item in enumerate(data["clusters"]):
            tokens = [str(t) for t in item["tokens"]]
            wild = [None if w is None else (str(w[0]), str(w[1])) for w in item["wild"]]
            if len(wild) != len(tokens):
                raise InvalidState(f"template {item['id']}: tokens and wildcards differ")
            cluster = Cluster(str(item["id"]), str(item["key"]), tokens, wild, seq)
            cluster.size = int(item["size"])
            cluster.seen = {int(p): [str(w) for w in words] for p, words in item.get("seen", [])}
            if "anchor" in item:
                anchor = shapes[str(item["anchor"])]
                cluster.anchor = anchor
                anchor.siblings.append(cluster)
            shapes[cluster.id] = cluster
        for item in data["clusters"]:
            cluster = shapes[str(item["id"])]
            if "root" in item:
                cluster.root = shapes[str(item["root"])]
            if "members" in item:
                cluster.members = [shapes[str(m)] for m in item["members"]]
                cluster.text = str(item["text"])
    except (KeyError, TypeError, IndexError, ValueError) as exc:
        raise InvalidState(f"malformed snapshot: {exc!r}") from exc
    for cluster in shapes.values():
        if cluster.root.root is not cluster.root or cluster not in cluster.root.members:
            raise InvalidState(f"template {cluster.id}: inconsistent group")
    return list(shapes.values())


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
