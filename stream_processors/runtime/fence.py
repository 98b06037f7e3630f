"""The replay fence: records whose effects the saved states already hold are not applied twice.

A checkpoint saves, with the states and in the same write, ``{"next": offset, "base":
committed}`` per partition: the states hold every record before ``next``, and ``base`` is the
group's committed offset the saver knew.  When the commit after that save did not land (the
group rebalanced, the process stopped or died, the coordinator was away), the next owner finds
the group still at ``base``: it skips the records before ``next`` instead of applying them to
the states a second time.  A fence whose ``base`` is not the group's committed offset (the
commit landed, the offsets were reset, the topic was recreated) is ignored.

Pure bookkeeping: the runtime (:mod:`.loop`) reads the committed offsets and the saved fences
and hands them to :meth:`ReplayFence.learn`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from confluent_kafka import OFFSET_INVALID, TopicPartition

from seismo.logs import fields
from stream_processors.runtime.step import Record

log = logging.getLogger(__name__)
Partition = tuple[str, int]


class ReplayFence:
    """The fences and the committed offsets of the partitions one runtime consumes."""

    def __init__(self, group_id: str, label: str) -> None:
        self.group_id = group_id
        self.label = label
        self.next: dict[Partition, int] = {}  # per partition: the states hold every record before it
        self.committed: dict[Partition, int] = {}  # the group's committed offset, as known

    def key(self, topic: str, partition: int) -> str:
        """The StateStore key of one partition's fence."""
        return f"~fence/{self.group_id}/{topic}/{partition}"

    def unknown(self, records: list[Record]) -> list[Partition]:
        """The partitions of ``records`` first seen since they were assigned (or since a rewind)."""
        return sorted({(r.topic, r.partition) for r in records} - self.next.keys())

    def learn(self, committed: list[TopicPartition], saved: Mapping[str, Any]) -> None:
        """Take the group's committed offsets of new partitions and their saved fences."""
        for tp in committed:
            part = (tp.topic, tp.partition)
            self.committed[part] = tp.offset
            value = saved.get(self.key(*part)) or {}
            valid = value.get("base") == tp.offset and isinstance(value.get("next"), int)
            self.next[part] = int(value["next"]) if valid else -1
            if valid and int(value["next"]) > tp.offset:
                log.info("%s: %s[%s] resumes past the last commit (%s): the records before %s are "
                         "already in the saved states", self.label, part[0], part[1], value["base"],
                         value["next"], extra=fields(step=self.label))

    def past(self, records: list[Record], offsets: dict[Partition, int]) -> list[Record]:
        """``records`` without those the saved states already hold; the skipped ones still move
        ``offsets`` (what the next commit commits)."""
        kept = []
        for record in records:
            part = (record.topic, record.partition)
            if record.offset < self.next[part]:
                offsets[part] = record.offset + 1
            else:
                kept.append(record)
        return kept

    def entries(self, offsets: Mapping[Partition, int]) -> dict[str, dict[str, int]]:
        """The fences to save with the states, for the offsets about to be committed."""
        return {self.key(t, p): {"next": o, "base": self.committed.get((t, p), OFFSET_INVALID)}
                for (t, p), o in offsets.items()}

    def committed_to(self, offsets: list[TopicPartition]) -> None:
        """The commit of ``offsets`` landed."""
        for tp in offsets:
            self.committed[(tp.topic, tp.partition)] = tp.offset

    def clear(self) -> None:
        self.next.clear()
        self.committed.clear()
