"""Block sessions from raw HDFS-like lines (models.hdfs_blocks) and the session detector on them."""

from __future__ import annotations

import pytest

from models.hdfs_blocks import BlockSession, block_ids, block_sessions, chronological_split
from models.session import SessionInvariants
from stream_processors.normalize.templating import TemplateMiner, loghub_format

HEADER = "081109 2035{s:02d} {pid} INFO dfs.{comp}: "


def _normal(block: str, i: int) -> list[str]:
    ip = f"10.250.{i % 7}.{10 + i}"
    return [
        HEADER.format(s=i % 60, pid=143, comp="DataNode$DataXceiver")
        + f"Receiving block {block} src: /{ip}:5{i:04d} dest: /{ip}:50010",
        HEADER.format(s=i % 60, pid=35, comp="FSNamesystem")
        + f"BLOCK* NameSystem.allocateBlock: /mnt/hadoop/job_{i}/job.jar. {block}",
        HEADER.format(s=i % 60, pid=145, comp="DataNode$PacketResponder")
        + f"PacketResponder {i % 3} for block {block} terminating",
        HEADER.format(s=i % 60, pid=145, comp="DataNode$PacketResponder")
        + f"Received block {block} of size {67108864 - i} from /{ip}",
        HEADER.format(s=i % 60, pid=19, comp="FSNamesystem")
        + f"BLOCK* NameSystem.addStoredBlock: blockMap updated: {ip}:50010 is added to "
        + f"{block} size {67108864 - i}",
    ]


def _abnormal(block: str, i: int) -> list[str]:
    ip = f"10.251.{i % 7}.{10 + i}"
    return [
        HEADER.format(s=i % 60, pid=143, comp="DataNode$DataXceiver")
        + f"Receiving block {block} src: /{ip}:5{i:04d} dest: /{ip}:50010",
        HEADER.format(s=i % 60, pid=35, comp="FSNamesystem")
        + f"BLOCK* NameSystem.allocateBlock: /mnt/hadoop/job_{i}/job.jar. {block}",
        HEADER.format(s=i % 60, pid=146, comp="DataNode$DataXceiver")
        + f"writeBlock {block} received exception java.io.IOException: Connection reset by peer",
    ]


def _interleave(*blocks: list[str]) -> list[str]:
    """Round-robin the blocks' lines, as concurrent blocks appear in a real HDFS log."""
    out: list[str] = []
    for step in range(max(len(b) for b in blocks)):
        out.extend(b[step] for b in blocks if step < len(b))
    return out


def _log(n_normal: int, abnormal_at: int) -> tuple[list[str], list[str]]:
    """(lines, block ids in order): pairs of normal blocks interleaved, one abnormal block."""
    ids = [f"blk_{'-' if i % 2 else ''}{1000 + i}" for i in range(n_normal + 1)]
    lines: list[str] = []
    for i in range(0, n_normal + 1, 2):
        pair = [
            _abnormal(ids[k], k) if k == abnormal_at else _normal(ids[k], k)
            for k in (i, i + 1)
            if k <= n_normal
        ]
        lines += _interleave(*pair)
    return lines, ids


def _mine(lines: list[str]) -> tuple[TemplateMiner, tuple[BlockSession, ...]]:
    miner = TemplateMiner()
    grouped = block_sessions(lines, loghub_format("HDFS").content, lambda text: miner.add(text).template_id)
    return miner, grouped.sessions


def test_block_ids_are_distinct_in_order_and_keep_the_sign() -> None:
    text = "ask 10.0.0.1:50010 to delete blk_-42 blk_7 blk_-42 (blk_7)"
    assert block_ids(text) == ("blk_-42", "blk_7")
    assert block_ids("no block here") == ()


def test_lines_are_grouped_by_every_block_they_name_in_first_appearance_order() -> None:
    lines = [
        "H recv blk_2",
        "H recv blk_-1",
        "",
        "not a header line",
        "H start datanode",
        "H ack blk_-1",
        "H delete blk_2 blk_-1 blk_2",
        "H ack blk_2",
    ]
    seen: list[str] = []

    def template(text: str) -> str:
        seen.append(text)
        return text.split()[0]

    grouped = block_sessions(lines, lambda line: line[2:] if line.startswith("H ") else None, template)
    assert [(s.block_id, s.first_line, s.events) for s in grouped.sessions] == [
        ("blk_2", 1, ("recv", "delete", "ack")),
        ("blk_-1", 2, ("recv", "ack", "delete")),
    ]
    assert grouped.sessions[0].counts() == {"recv": 1.0, "delete": 1.0, "ack": 1.0}
    assert (grouped.lines, grouped.unparsed, grouped.without_block) == (8, 1, 1)
    assert "start datanode" in seen  # lines without a block are still mined, in order
    assert seen == [line[2:] for line in lines if line.startswith("H ")]


def test_raw_hdfs_lines_give_per_block_template_sequences_from_the_seismo_miner() -> None:
    lines, ids = _log(n_normal=9, abnormal_at=4)
    miner, sessions = _mine(lines)
    assert [s.block_id for s in sessions] == ids
    texts = {s.block_id: [miner.clusters[t].text for t in s.events] for s in sessions}
    normal_starts = [
        "Receiving block <ID>",
        "BLOCK* NameSystem.allocateBlock:",
        "PacketResponder",
        "Received block <ID> of size",
        "BLOCK* NameSystem.addStoredBlock:",
    ]
    for block in ids:
        expected = normal_starts[:2] + (["writeBlock <ID>"] if block == ids[4] else normal_starts[2:])
        assert len(texts[block]) == len(expected)
        assert all(t.startswith(e) for t, e in zip(texts[block], expected, strict=True))
        assert not any("blk_" in t for t in texts[block])  # ids were masked by the miner
    normal = [s for s in sessions if s.block_id != ids[4]]
    assert len({s.events for s in normal}) == 1  # one template per line kind, ids stable
    assert normal[0].counts() == {t: 1.0 for t in normal[0].events}
    assert len(miner.clusters) == 6


def test_chronological_split_keeps_the_earliest_blocks_for_training() -> None:
    sessions = [BlockSession(f"blk_{n}", n, ("E",)) for n in (5, 1, 9, 3, 7)]
    train, test = chronological_split(sessions, 0.6)
    assert [s.first_line for s in train] == [1, 3, 5]
    assert [s.first_line for s in test] == [7, 9]
    with pytest.raises(ValueError, match="train_fraction"):
        chronological_split(sessions, 1.0)


def test_the_detector_fitted_on_normal_blocks_flags_only_the_abnormal_block() -> None:
    lines, ids = _log(n_normal=40, abnormal_at=37)
    _, sessions = _mine(lines)
    train, test = chronological_split(sessions, 0.8)
    assert ids[37] in {s.block_id for s in test}
    model = SessionInvariants(min_samples=len(train))
    for session in train:
        model.learn_one(session.counts())  # no labels
    scores = {s.block_id: model.score_one(s.counts()) for s in test}
    assert scores[ids[37]] >= 1.0
    assert all(score == 0.0 for block, score in scores.items() if block != ids[37])
    reasons = model.violations(next(s for s in test if s.block_id == ids[37]).counts())
    assert any("!=" in r for r in reasons)  # a broken invariant, not only the rare event
    assert any(r.startswith("rare event") for r in reasons)


def test_an_invariant_between_events_first_seen_together_counts_that_session() -> None:
    model = SessionInvariants(support=1.0, min_samples=5)
    for _ in range(5):
        model.learn_one({"a": 1.0, "b": 1.0})
    assert model.violations({"a": 1.0}) == ["1*a != 1*b"]
    assert model.score_one({"a": 2.0, "b": 2.0}) == 0.0
