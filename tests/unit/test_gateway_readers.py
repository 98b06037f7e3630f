"""A gateway reader that stops on an error it did not expect makes the gateway unhealthy: /healthz
503 naming the topic and the error, tools refusing, instead of stale tables served as current."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from mcp_gateway.context import GatewayContext
from mcp_gateway.errors import NotReady
from mcp_gateway.follower import TopicFollower
from mcp_gateway.server import build_server
from mcp_gateway.store import IncidentStore


class Reader(TopicFollower):
    """Runs until told to fail, then raises like a reader with a bug would."""

    def __init__(self) -> None:
        super().__init__("127.0.0.1:1", "t.seismo.incidents", "test", "test-reader")
        self.fail = threading.Event()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if self.fail.wait(0.01):
                    raise KeyError("service")
        finally:
            self._consumer.close()


@pytest.fixture
def reader() -> Iterator[Reader]:
    r = Reader()
    r.start()
    yield r
    r.stop()


def test_a_reader_that_died_makes_healthz_503_and_tools_refuse(reader: Reader) -> None:
    store = IncidentStore()
    store.caught_up.set()
    ctx = GatewayContext(store, readers=[reader])
    app = build_server(ctx).streamable_http_app()
    with TestClient(app, base_url="http://127.0.0.1:8765") as http:
        ok = http.get("/healthz")
        assert ok.status_code == 200 and ok.json()["status"] == "ok" and ok.json()["failed_readers"] == {}
        ctx.ready()  # answers while the reader runs

        reader.fail.set()
        reader._thread.join(5)
        assert not reader._thread.is_alive()
        assert reader.failure == "KeyError: 'service'"

        failed = http.get("/healthz")
        assert failed.status_code == 503
        assert failed.json()["status"] == "failed"
        assert failed.json()["failed_readers"] == {"t.seismo.incidents": "KeyError: 'service'"}
    with pytest.raises(NotReady, match=r"stopped reading t\.seismo\.incidents \(KeyError"):
        ctx.ready()


def test_a_reader_stopped_on_purpose_is_not_a_failure(reader: Reader) -> None:
    reader.stop()
    assert reader.failure is None
    store = IncidentStore()
    store.caught_up.set()
    assert GatewayContext(store, readers=[reader]).healthy()
