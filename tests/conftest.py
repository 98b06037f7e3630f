"""Shared fixtures.  Tests marked ``kafka`` need the real broker and fail loudly without it."""

from __future__ import annotations

from pathlib import Path

import pytest

from seismo.local.kafka import broker_answers
from tests.kafka_utils import Env, bootstrap


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    addr = bootstrap()
    if not broker_answers(addr, timeout=10):
        pytest.fail(
            f"no Kafka broker answers at {addr}: run `seismo kafka start` (or .ci/run), "
            "or set SEISMO_KAFKA_BOOTSTRAP"
        )
    return addr


@pytest.fixture
def seismo_env(kafka_bootstrap: str, tmp_path: Path) -> Env:
    return Env(state_dir=tmp_path / "state")
