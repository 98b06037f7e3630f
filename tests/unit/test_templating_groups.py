"""Templates across token counts and words: one event whose values change the token count is one
template, and plain words are read as values or as the event by how many distinct ones turn up.

Every line here is made up for the test, shaped like the problems these rules address.
"""

from __future__ import annotations

import json

from stream_processors.normalize.templating.align import alike, group_text, skeleton
from stream_processors.normalize.templating.miner import Change, MinerConfig, TemplateMiner
from stream_processors.normalize.templating.offline import OFFLINE_CONFIG, templates_offline
from stream_processors.normalize.templating.registry import REGISTRY_FORMAT, TemplateRegistry

OFFLINE = OFFLINE_CONFIG

# A proxy's connection-closed event: byte counts with and without a parenthesized size,
# lifetimes as a clock or as "<1 sec", and the host:port that opens the line.
CLOSED = [
    "gw.example.org:8080 close, 403 bytes sent, 1204 bytes received, lifetime 00:01",
    "cdn.example.net:443 close, 1190 bytes (1.16 KB) sent, 1671 bytes (1.63 KB) received, lifetime <1 sec",
    "mail.example.org:443 close, 0 bytes sent, 0 bytes received, lifetime 00:02",
    "api.example.org:443 close, 2048 bytes (2.00 KB) sent, 512 bytes received, lifetime 01:13",
    "db.example.org:5432 close, 12 bytes sent, 4096 bytes (4.00 KB) received, lifetime <1 sec",
    "10.0.0.7:443 close, 3210 bytes (3.13 MB) sent, 2 bytes received, lifetime 02:05",
]
OPENED = [
    "api.example.org:443 open through proxy gw.example.org:8080 HTTPS",
    "cdn.example.net:443 open through proxy gw.example.org:8080 HTTPS",
]


def final_ids(miner: TemplateMiner, lines: list[str]) -> list[str]:
    ids = [miner.add(line).template_id for line in lines]
    return [miner.clusters[i].id for i in ids]


def test_an_event_whose_values_change_the_token_count_is_one_template() -> None:
    for config in (OFFLINE, MinerConfig()):
        miner = TemplateMiner(config)
        closed = final_ids(miner, CLOSED)
        opened = final_ids(miner, OPENED)
        assert len(set(closed)) == 1, config
        assert len(set(opened)) == 1
        assert closed[0] != opened[0]
    assert miner.clusters[closed[0]].text == "<*> close, <*> sent, <*> received, lifetime <*>"


def test_a_list_of_values_of_any_length_is_one_template() -> None:
    lines = [
        "ask 10.0.0.1:50010 to delete blk_1",
        "ask 10.0.0.2:50010 to delete blk_2 blk_3 blk_4",
        "ask 10.0.0.3:50010 to delete blk_5 blk_6",
    ]
    miner = TemplateMiner()
    assert len(set(final_ids(miner, lines))) == 1
    assert miner.add(lines[0]).template == "ask <IP> to delete <*>"


def test_a_unit_word_after_a_number_is_part_of_the_value() -> None:
    miner = TemplateMiner()
    small = miner.add("cached block rdd_3 (estimated size 384.0 B, free 1.2 GB)")
    large = miner.add("cached block rdd_4 (estimated size 12.5 KB, free 1.1 GB)")
    assert small.template_id == large.template_id
    # ... but not a word that is no unit
    other = miner.add("cached block rdd_5 (estimated size 12.5 rows, free 1.1 GB)")
    assert other.template_id != small.template_id


def test_two_stable_words_are_two_events_until_more_words_turn_up() -> None:
    miner = TemplateMiner(OFFLINE)
    as_bytes = [miner.add(f"stored block b_{i} as bytes in memory").template_id for i in range(5)]
    as_values = [miner.add(f"stored block b_{i} as values in memory").template_id for i in range(5)]
    assert len(set(as_bytes)) == 1
    assert len(set(as_values)) == 1
    assert as_bytes[0] != as_values[0]
    # A user field: a third distinct word makes the position a value, and the younger
    # template joins the older one, whose id the group keeps.
    alice = miner.add("session opened for user alice").template_id
    bob = miner.add("session opened for user bob").template_id
    assert alice != bob
    carol = miner.add("session opened for user carol")
    assert carol.template_id == alice
    assert carol.template == "session opened for user <*>"
    assert miner.clusters[bob].id == alice  # an id handed out before the merge still resolves
    assert bob not in miner.clusters  # ... but is no longer a live template
    assert miner.add("session opened for user bob").template_id == alice


def test_at_the_streaming_default_a_second_word_merges_at_once() -> None:
    miner = TemplateMiner()
    first = miner.add("worker 4 finished job export")
    second = miner.add("worker 5 finished job import")
    assert second.template_id == first.template_id
    assert second.change is Change.GENERALIZED


def test_streaming_never_merges_two_templates_that_were_already_reported() -> None:
    lines = [
        "worker 3 finished job batch-7",
        "worker 4 finished job export",
        "worker 5 finished job import",  # widens the export template to <*>, now alike batch-<NUM>
    ]
    miner = TemplateMiner()
    reported = [miner.add(line).template_id for line in lines]
    assert reported[0] != reported[1]
    assert [miner.add(line).template_id for line in lines] == reported
    merged = TemplateMiner(MinerConfig(merge_live=True))
    assert len(set(final_ids(merged, lines))) == 1


def test_grouped_templates_survive_save_and_load() -> None:
    original = TemplateMiner(OFFLINE)
    for line in [*CLOSED[:3], "session opened for user alice", "session opened for user bob"]:
        original.add(line)
    restored = TemplateMiner(OFFLINE)
    restored.load_state(original.save_state())
    assert restored.save_state() == original.save_state()
    rest = CLOSED[3:] + OPENED + ["session opened for user carol", "session opened for user bob"]
    assert [restored.add(x) for x in rest] == [original.add(x) for x in rest]
    assert restored.save_state() == original.save_state()


def test_a_version_1_snapshot_still_loads() -> None:
    v1 = {
        "format": "seismo.templating.miner",
        "version": 1,
        "similarity": 0.5,  # the version-1 default; loads under today's settings
        "clusters": [
            {
                "id": "Tabc",
                "key": "disk full",
                "tokens": ["disk", "full", "on", "<PATH>"],
                "wild": [None] * 4,
                "size": 3,
            }
        ],
    }
    miner = TemplateMiner()
    miner.load_state(json.dumps(v1).encode())
    result = miner.add("disk full on /var")
    assert (result.template_id, result.change) == ("Tabc", Change.MATCHED)
    assert json.loads(miner.save_state())["version"] == 2
    registry = TemplateRegistry()
    registry.load_state(
        json.dumps({"format": REGISTRY_FORMAT, "version": 1, "services": {"api": v1}}).encode()
    )
    assert registry.add("api", "disk full on /tmp").template_id == "Tabc"


def test_offline_rows_report_the_final_template_of_each_line() -> None:
    rows = templates_offline(CLOSED, "raw")
    assert len({r.event_id for r in rows}) == 1
    assert {r.event_template for r in rows} == {"<*> close, <*> sent, <*> received, lifetime <*>"}


def test_skeletons_collapse_runs_of_values_and_the_units_after_them() -> None:
    assert skeleton(["<NUM>", "bytes", "(<NUM>", "KB)", "sent,", "lifetime", "<<NUM>", "sec"]) == (
        "<*>", "sent,", "lifetime", "<*>",
    )
    assert skeleton(["session", "opened", "for", "user", "root", "by", "(uid=<NUM>)"])[-1] == "(uid=<*>)"
    assert skeleton(["retry", "<NUM>", "times"]) == ("retry", "<*>", "times")


def test_alike_skeletons_differ_only_where_values_merge() -> None:
    a = ("cdn.example.net:<*>", "close,", "<*>", "sent,")
    assert alike(a, ("gw.example.org:<*>", "close,", "<*>", "sent,"), 0.7)
    assert not alike(a, ("gw.example.org:<*>", "close,", "<*>", "sent,"), 1.0)
    assert not alike(("stored", "as", "bytes"), ("stored", "as", "values"), 0.5)  # words: maybe events
    assert not alike(("a", "b"), ("a", "b", "c"), 0.5)


def test_group_text_writes_one_wildcard_per_differing_value_run() -> None:
    short = ["<NUM>", "bytes", "sent,", "lifetime", "<NUM>:<NUM>"]
    long = ["<NUM>", "bytes", "(<NUM>", "KB)", "sent,", "lifetime", "<<NUM>", "sec"]
    assert " ".join(group_text(short, long)) == "<*> sent, lifetime <*>"
    assert group_text(["a", "x", "c"], ["a", "y", "c"]) == ["a", "<*>", "c"]
    small, large = ["size", "<NUM>", "B,", "free"], ["size", "<NUM>", "KB,", "free"]
    assert group_text(small, large) == ["size", "<*>,", "free"]
    assert group_text(["(<NUM>", "KB)"], ["(<NUM>", "MB)"]) == ["(<*>)"]
    assert group_text(["<NUM>", "bytes"], ["<IP>", "bytes"]) == ["<*>", "bytes"]
    assert group_text(["a", "b", "c"], ["a", "c"]) == ["a", "<*>", "c"]


def test_enum_values_sharing_a_prefix_merge_at_once_and_all_caps_words_do_not() -> None:
    for config in (OFFLINE, MinerConfig()):
        miner = TemplateMiner(config)
        down = miner.add("dispatch touch event action=ACTION_DOWN to view 0x1f")
        up = miner.add("dispatch touch event action=ACTION_UP to view 0x2e")
        assert up.template_id == down.template_id
        assert up.template == "dispatch touch event action=ACTION_<*> to view <HEX>"
        high = miner.add("fan speed set to HIGH by controller")
        low = miner.add("fan speed set to LOW by controller")
        assert high.template_id != low.template_id


def test_terminal_names_are_values() -> None:
    miner = TemplateMiner(OFFLINE)
    terminals = ("tty1", "pts/0", "tty7")
    ids = {miner.add(f"session opened on {tty} for user root").template_id for tty in terminals}
    assert len(ids) == 1
