"""Shared fixtures.  Tests marked ``kafka`` need the real broker and fail loudly without it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from seismo.local.kafka import broker_answers
from tests.kafka_utils import CREATED, Env, bootstrap


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    addr = bootstrap()
    if not broker_answers(addr, timeout=10):
        pytest.fail(
            f"no Kafka broker answers at {addr}: run `seismo kafka start` (or .ci/run), "
            "or set SEISMO_KAFKA_BOOTSTRAP"
        )
    return addr


@pytest.fixture(scope="session", autouse=True)
def _drop_test_topics() -> Iterator[None]:
    """By the session's end, the topics of every test deployment that is still there (those made
    outside ``seismo_env``, or on a broker a test started itself) are deleted."""
    yield
    for env in CREATED:
        drop_topics(env, timeout=3)


@pytest.fixture
def seismo_env(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Env]:
    env = Env(state_dir=tmp_path / "state")
    yield env
    drop_topics(env)
    CREATED.remove(env)


def drop_topics(env: Env, timeout: float = 10) -> None:
    """Delete the test's topics (best effort): a broker that keeps every test's topics grows to
    thousands of them over a few runs, and each metadata request and its idle work grow with it."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": env.bootstrap, "log_level": 3})
    try:
        names = [t for t in admin.list_topics(timeout=timeout).topics if t.startswith(f"t-{env.run}.")]
        for future in (admin.delete_topics(names, operation_timeout=10).values() if names else []):
            future.result(15)
    except KafkaException:
        pass  # a test that stopped the broker, or one slow to forget: the topics stay
