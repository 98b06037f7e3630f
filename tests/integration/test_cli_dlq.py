"""``seismo dlq`` and ``seismo incidents`` against the real broker: every rejected line's reason is
reachable from the CLI, and a missing topic or a missing worker is named, not guessed at (issue 14)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from tests.kafka_utils import Env

pytestmark = pytest.mark.kafka

GOOD = {"source": "file", "kind": "log", "timestamp": "2024-05-01T12:00:00Z", "service": "payments",
        "severity": "info", "message": "ok"}


@pytest.fixture
def env(seismo_env: Env) -> Iterator[Env]:
    yield seismo_env
    admin = AdminClient({"bootstrap.servers": seismo_env.vars["SEISMO_KAFKA_BOOTSTRAP"]})
    mine = [t for t in admin.list_topics(timeout=10).topics if t.startswith(f"t-{seismo_env.run}.")]
    if mine:
        for future in admin.delete_topics(mine, operation_timeout=30).values():
            future.result(30)
    listed = admin.list_consumer_groups().result(15).valid
    groups = [g.group_id for g in listed if seismo_env.run in g.group_id]
    if groups:
        for future in admin.delete_consumer_groups(groups).values():
            future.result(15)


def bad_file(tmp_path: Path) -> Path:
    no_time = {k: v for k, v in GOOD.items() if k != "timestamp"}
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join([json.dumps(GOOD), "{not json", json.dumps(no_time), "[]"]) + "\n", "utf-8")
    return path


def test_dlq_lists_and_counts_every_line_ingest_rejected(env: Env, tmp_path: Path) -> None:
    ingested = env.seismo("ingest", str(bad_file(tmp_path)))
    assert "1 published, 3 rejected" in ingested.stdout
    assert "events.jsonl: line 3: timestamp: Field required" in ingested.stderr

    table = env.seismo("dlq")
    assert table.returncode == 0, table.stderr
    assert f"3 dead letters on {env.topic('dlq')}" in table.stdout
    assert "events.jsonl line 3" in table.stdout
    assert "timestamp: Field required" in table.stdout

    letters = [json.loads(line) for line in env.seismo("dlq", "--json").stdout.splitlines()]
    assert [(x["line_number"], x["component"]) for x in letters] == [(n, "ingest") for n in (2, 3, 4)]
    assert letters[1]["reason"] == "line 3: timestamp: Field required"
    assert letters[0]["payload"] == "{not json"

    assert env.seismo("dlq", "--json", "--component", "normalize").stdout == ""
    assert len(env.seismo("dlq", "--json", "--since", "1h").stdout.splitlines()) == 3
    assert env.seismo("dlq", "--json", "--since", "2099-01-01T00:00:00Z").stdout == ""


def test_dlq_with_a_bad_since_exits_2_naming_it(env: Env) -> None:
    result = env.seismo("dlq", "--since", "yesterday", check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: --since 'yesterday' is neither a duration (30m, 2h, 7d) nor a "
                                     "time (2024-05-01T12:00:00Z)")


def test_dlq_without_the_topic_says_nothing_was_rejected(env: Env) -> None:
    result = env.seismo("dlq")
    assert result.returncode == 0
    assert f"no dead letters: {env.topic('dlq')} does not exist" in " ".join(result.stdout.split())


def test_incidents_on_a_prefix_without_topics_names_the_topic_and_the_prefix(env: Env) -> None:
    result = env.seismo("incidents", check=False)
    assert result.returncode == 1
    line = " ".join(result.stderr.split())
    assert line.startswith(f"error: the topic {env.topic('incidents')} does not exist")
    assert f"SEISMO_TOPIC_PREFIX='t-{env.run}.'" in line
    assert "Traceback" not in result.stderr


def test_incidents_after_an_ingest_without_a_worker_says_a_worker_must_run(env: Env, tmp_path: Path) -> None:
    env.seismo("ingest", str(bad_file(tmp_path)))
    result = env.seismo("incidents")
    assert "no incidents" in result.stdout
    assert "1 event on" in result.stderr
    assert "start one" in result.stderr


def test_incidents_gives_no_worker_hint_once_the_worker_read_every_event(env: Env, tmp_path: Path) -> None:
    from confluent_kafka import Consumer, TopicPartition

    env.seismo("ingest", str(bad_file(tmp_path)))
    raw = env.topic("events.raw")
    worker = Consumer({"bootstrap.servers": env.vars["SEISMO_KAFKA_BOOTSTRAP"],
                       "group.id": env.settings.group_id("normalize"), "enable.auto.commit": False})
    try:
        parts = worker.list_topics(raw, timeout=10).topics[raw].partitions
        ends = [TopicPartition(raw, p, worker.get_watermark_offsets(TopicPartition(raw, p), timeout=10)[1])
                for p in parts]
        worker.commit(offsets=ends, asynchronous=False)
    finally:
        worker.close()
    result = env.seismo("incidents")
    assert "no incidents" in result.stdout
    assert "not processed yet" not in result.stderr
