"""The online miner groups lines into templates with stable, deterministic ids."""

from __future__ import annotations

import pytest

from stream_processors.normalize.templating.exceptions import InvalidState, UnknownLogFormat
from stream_processors.normalize.templating.masking import Param
from stream_processors.normalize.templating.miner import Change, MinerConfig, TemplateMiner
from stream_processors.normalize.templating.offline import CSV_HEADER, templates_offline
from stream_processors.normalize.templating.registry import TemplateRegistry

STREAM = [
    "Invalid user alice from 10.0.0.1",
    "Accepted password for root from 10.0.0.2 port 22 ssh2",
    "Invalid user bob from 10.0.0.3",
    "session opened for user root by (uid=0)",
    "Accepted password for admin from 10.0.0.4 port 2222 ssh2",
    "Invalid user carol from 10.0.0.5",
    "Job 12 transitioned from NEW to RUNNING",
    "Job 13 transitioned from RUNNING to DONE",
    "session opened for user guest by (uid=501)",
    "Received disconnect from 10.0.0.6: 11: Bye Bye [preauth]",
    "Received disconnect from 10.0.0.7: 11: disconnected by user",
]


def run(miner: TemplateMiner, lines: list[str]) -> list[tuple[str, str, Change]]:
    return [(r.template_id, r.template, r.change) for r in map(miner.add, lines)]


def test_lines_differing_only_in_values_share_one_template() -> None:
    miner = TemplateMiner()
    first = miner.add("retry 3 of 10 for job 7")
    second = miner.add("retry 4 of 10 for job 9")
    assert first.template_id == second.template_id
    assert second.change is Change.MATCHED
    assert second.template == "retry <NUM> of <NUM> for job <NUM>"


def test_different_events_get_different_templates() -> None:
    miner = TemplateMiner()
    a = miner.add("connection opened to 10.0.0.1")
    b = miner.add("disk full on /var")
    assert a.template_id != b.template_id
    assert a.is_new
    assert b.is_new


def test_a_template_that_gains_a_wildcard_keeps_its_id() -> None:
    miner = TemplateMiner()
    first = miner.add("Invalid user alice from 10.0.0.1")
    second = miner.add("Invalid user bob from 10.0.0.2")
    assert first.change is Change.NEW
    assert second.change is Change.GENERALIZED
    assert second.template_id == first.template_id
    assert second.template == "Invalid user <*> from <IP>"
    assert second.params == (Param("<IP>", "10.0.0.2"), Param("<*>", "bob"))


def test_wildcards_keep_the_shared_prefix_of_a_token() -> None:
    miner = TemplateMiner()
    miner.add("pam login from rhost=alpha.example done")
    result = miner.add("pam login from rhost=beta done")
    assert result.template == "pam login from rhost=<*> done"
    assert result.params[-1] == Param("<*>", "beta")


def test_distinct_all_caps_states_are_never_merged() -> None:
    miner = TemplateMiner()
    a = miner.add("Job 12 transitioned from NEW to RUNNING")
    b = miner.add("Job 13 transitioned from RUNNING to DONE")
    assert a.template_id != b.template_id


def test_an_optional_constant_word_names_another_event() -> None:
    miner = TemplateMiner()
    plain = miner.add("session opened for user root by (uid=0)")
    login = miner.add("session opened for user root by LOGIN(uid=0)")
    again = miner.add("session opened for user news by (uid=9)")
    assert plain.template_id != login.template_id
    assert again.template_id == plain.template_id
    # Values between a shared prefix still merge, whatever their case.
    first = miner.add("Processing event EventType: CONTAINER_REMOTE_LAUNCH for container c_1")
    other = miner.add("Processing event EventType: CONTAINER_REMOTE_CLEANUP for container c_2")
    assert first.template_id == other.template_id
    assert other.template == "Processing event EventType: CONTAINER_REMOTE_<*> for container <ID>"


def test_ids_are_deterministic_across_miners() -> None:
    assert run(TemplateMiner(), STREAM) == run(TemplateMiner(), STREAM)
    ids = {r[0] for r in run(TemplateMiner(), STREAM)}
    assert all(i.startswith("T") and len(i) == 13 for i in ids)


def test_save_and_load_continue_exactly_like_the_original() -> None:
    original = TemplateMiner()
    run(original, STREAM[:6])
    restored = TemplateMiner()
    restored.load_state(original.save_state())
    assert restored.save_state() == original.save_state()
    assert run(restored, STREAM[6:]) == run(original, STREAM[6:])
    assert restored.save_state() == original.save_state()


def test_loading_garbage_raises_and_leaves_the_miner_unchanged() -> None:
    miner = TemplateMiner()
    miner.add("hello 1")
    before = miner.save_state()
    for blob in (b"\xff", b"[]", b'{"format": "other"}'):
        with pytest.raises(InvalidState):
            miner.load_state(blob)
    assert miner.save_state() == before


def test_a_snapshot_taken_with_another_similarity_is_refused() -> None:
    blob = TemplateMiner(MinerConfig(similarity=0.7)).save_state()
    with pytest.raises(InvalidState, match="similarity"):
        TemplateMiner().load_state(blob)


def test_an_empty_line_is_a_template_too() -> None:
    assert TemplateMiner().add("   ").template == ""


def test_services_in_a_registry_do_not_share_templates() -> None:
    registry = TemplateRegistry()
    registry.add("auth", "Invalid user alice from 10.0.0.1")
    result = registry.add("billing", "Invalid user bob from 10.0.0.2")
    assert result.change is Change.NEW
    assert registry.services() == ("auth", "billing")


def test_a_registry_round_trips_through_save_and_load() -> None:
    registry = TemplateRegistry()
    for i, line in enumerate(STREAM):
        registry.add(f"svc{i % 2}", line)
    copy = TemplateRegistry()
    copy.load_state(registry.save_state())
    assert copy.save_state() == registry.save_state()
    assert copy.add("svc0", STREAM[0]) == registry.add("svc0", STREAM[0])


def test_offline_templating_reports_rows_in_input_order_with_final_templates() -> None:
    lines = [
        "Invalid user alice from 10.0.0.1\n",
        "\n",
        "Invalid user bob from 10.0.0.2\n",
        "Invalid user carol from 10.0.0.3\n",
    ]
    rows = templates_offline(lines, "raw")
    assert [r.line_id for r in rows] == [1, 3, 4]
    # bob first got a template of his own; the third user made the position a value,
    # and every row reports the final (oldest) template.
    assert rows[0].event_id == rows[1].event_id == rows[2].event_id
    assert {r.event_template for r in rows} == {"Invalid user <*> from <IP>"}
    assert CSV_HEADER == ("LineId", "EventId", "EventTemplate")


def test_offline_templating_splits_lines_with_a_loghub_format() -> None:
    line = "Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186"
    rows = templates_offline([line, "garbage"], "loghub:OpenSSH")
    assert [(r.line_id, r.event_template) for r in rows] == [(1, "Invalid user webmaster from <IP>")]


def test_offline_templating_rejects_an_unknown_format() -> None:
    with pytest.raises(UnknownLogFormat):
        templates_offline([], "syslog")
