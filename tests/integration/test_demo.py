"""`seismo demo` end to end: it feeds its scenario, prints incidents and the MCP URL, and stops cleanly."""

from __future__ import annotations

import pytest

from tests.kafka_utils import Env, free_port

pytestmark = pytest.mark.kafka


def test_demo_prints_incidents_of_both_faulty_services_and_the_mcp_endpoint(seismo_env: Env) -> None:
    port = free_port()
    seismo_env.extra["COLUMNS"] = "200"
    out = seismo_env.seismo("demo", "--port", str(port), "--exit-after", "1", timeout=240)
    text = out.stdout
    assert "2 incidents" in text, text
    assert "payments" in text and "inventory" in text
    assert f"http://127.0.0.1:{port}/mcp" in text
    assert "demo stopped" in text


@pytest.mark.redis
def test_demo_clean_up_removes_the_runs_topics_redis_keys_and_logs(seismo_env: Env) -> None:
    import re

    import redis
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.cimpl import NewTopic

    from seismo.demo import remove_demo_leftovers
    from seismo.topics import ensure_topics, topic_specs

    settings = seismo_env.settings
    ensure_topics(settings)
    marker = f"seismo-test-{seismo_env.run}"
    client = redis.Redis.from_url(settings.redis)
    client.hset(f"seismo:{marker}:state", "correlate:payments", "{}")
    logs = seismo_env.state_dir / "demo" / seismo_env.run
    logs.mkdir(parents=True)
    (logs / "worker.log").write_text("started\n", "utf-8")
    admin = AdminClient({"bootstrap.servers": settings.bootstrap})
    group = Consumer({"bootstrap.servers": settings.bootstrap, "group.id": f"{marker}-normalize"})
    group.commit(offsets=[TopicPartition(f"{settings.topic_prefix}seismo.dlq", 0, 0)], asynchronous=False)
    group.close()
    bystander = f"u-{seismo_env.run}.seismo.dlq"
    admin.create_topics([NewTopic(bystander, 1, 1)])[bystander].result(30)
    try:
        removed = remove_demo_leftovers(settings, re.escape(settings.topic_prefix), marker, logs)
        topics = len(topic_specs(settings))
        assert removed == f"{topics} topics, 1 consumer group, 1 Redis key, the log folder {logs}"
        groups = {g.group_id for g in admin.list_consumer_groups().result(15).valid}
        assert f"{marker}-normalize" not in groups
        left = [t for t in admin.list_topics(timeout=10).topics if t.startswith(settings.topic_prefix)]
        assert left == []
        assert bystander in admin.list_topics(timeout=10).topics
        assert list(client.scan_iter(match=f"*{marker}*")) == []
        assert not logs.exists()
    finally:
        admin.delete_topics([bystander])[bystander].result(30)
        client.close()
