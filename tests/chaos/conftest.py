"""Fixtures of the chaos suite: one private broker, one private redis-server and one undisturbed
reference run, shared by every chaos test of the session.

The tests run in CI with the rest of tests/ (marked ``kafka`` and ``redis``); a service
that cannot start fails them loudly, they are never skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from schemas.models import Event
from tests.chaos.services import PrivateKafka, PrivateRedis
from tests.chaos.workload import backlog, encoded, new_env, run_undisturbed
from tests.kafka_utils import Env


@dataclass
class Services:
    kafka: PrivateKafka
    redis: PrivateRedis


@dataclass
class Reference:
    """The backlog every scenario replays, and the run of one worker that nothing disturbed."""

    env: Env
    events: list[Event]
    records: list[tuple[bytes, bytes]]


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """A broker and a Redis that only the chaos tests use, so they may stop them."""
    root = tmp_path_factory.mktemp("chaos-services")
    kafka, redis = PrivateKafka(root), PrivateRedis(root)
    redis.start()
    try:
        kafka.start()
        yield Services(kafka, redis)
    finally:
        kafka.stop()
        redis.stop()


@pytest.fixture(scope="session")
def reference(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    events = backlog(8000)
    records = encoded(events)
    env = new_env(Path(tmp_path_factory.mktemp("chaos-reference")), "reference", services.kafka.bootstrap,
                  services.redis.url)
    run_undisturbed(env, records)
    return Reference(env, events, records)


@pytest.fixture
def services_up(services: Services) -> Iterator[Services]:
    """The shared services, started again after the test if it left one stopped."""
    yield services
    services.redis.start()
    services.kafka.start()
