"""Fakes that behave: a threaded HTTP server base for the source APIs and a recording publisher.

:class:`FakeHttpServer` runs on 127.0.0.1 with an ephemeral port in a daemon
thread.  Subclasses implement :meth:`FakeHttpServer.handle`; every test can
queue faults (:meth:`FakeHttpServer.fail`, :meth:`FakeHttpServer.malformed`)
that answer the next matching requests before the normal handler does.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from producers.cursors import MemoryCursorStore
from producers.exceptions import DeliveryFailed
from producers.metrics import RecordingMetrics
from producers.poll import Wiring
from producers.ratelimit import FakeClock
from schemas.codec import codec_for
from schemas.models import DeadLetter, Event

Write = Callable[[bytes], None]


@dataclass
class Reply:
    """One answer.  With ``stream`` the body is whatever ``stream(write)`` writes, flushed as it
    goes, and the connection closes when it returns (a Kubernetes watch, a chunked log follow)."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    stream: Callable[[Write], None] | None = None

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, bytes):
            return self.body, self.headers.get("Content-Type", "application/json")
        return json.dumps(self.body).encode(), "application/json"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any

    def param(self, name: str, default: str | None = None) -> str | None:
        return self.query.get(name, [default])[0]


@dataclass
class _Fault:
    path: str
    reply: Reply
    times: int


class FakeHttpServer:
    """Base of the fake source APIs.  Use as a context manager; ``url`` is the base URL."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def handle(self, request: Request) -> Reply:
        raise NotImplementedError

    def fail(
        self, path: str, status: int, times: int = 1, headers: dict[str, str] | None = None, body: Any = None
    ) -> None:
        """The next ``times`` requests whose path starts with ``path`` get ``status``."""
        with self._lock:
            self._faults.append(
                _Fault(path, Reply(status, body or {"detail": "fault"}, headers or {}), times)
            )

    def malformed(self, path: str, times: int = 1) -> None:
        """The next ``times`` matching requests get 200 with a body that is not JSON."""
        with self._lock:
            self._faults.append(_Fault(path, Reply(200, b'{"truncated": [1, 2'), times))

    def calls(self, path_prefix: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith(path_prefix)]

    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def _dispatch(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            for fault in self._faults:
                if request.path.startswith(fault.path) and fault.times > 0:
                    fault.times -= 1
                    return fault.reply
        return self.handle(request)

    def __enter__(self) -> Self:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                request = Request(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    json.loads(raw) if raw else None,
                )
                reply = fake._dispatch(request)
                if reply.stream is not None:
                    self._stream(reply)
                    return
                body, content_type = reply.encoded()
                self.send_response(reply.status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def _stream(self, reply: Reply) -> None:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.headers.get("Content-Type", "application/json"))
                self.send_header("Connection", "close")
                self.end_headers()

                def write(data: bytes) -> None:
                    self.wfile.write(data)
                    self.wfile.flush()

                assert reply.stream is not None
                # the client may stop reading early (a watch it ended itself)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    reply.stream(write)
                self.close_connection = True

            do_GET = do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        assert self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class RecordingPublisher:
    """An EventPublisher that keeps records; ``flush`` moves pending records to ``acked``.

    ``fail_flushes`` makes the next N flushes raise DeliveryFailed and drop what was pending
    (as if the broker refused it).
    """

    def __init__(self) -> None:
        self.pending: list[tuple[str, bytes | None, bytes]] = []
        self.acked: list[tuple[str, bytes | None, bytes]] = []
        self.fail_flushes = 0

    def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        self.pending.append((topic, key, value))

    def flush(self, timeout: float = 30.0) -> None:
        if self.fail_flushes:
            self.fail_flushes -= 1
            self.pending.clear()
            raise DeliveryFailed("broker refused the messages (fake)")
        self.acked.extend(self.pending)
        self.pending.clear()

    def values(self, topic: str) -> list[bytes]:
        return [v for t, _, v in self.acked if t == topic]


def decoded_events(publisher: RecordingPublisher, topic: str = "raw") -> list[Event]:
    """The acknowledged events on ``topic``, decoded."""
    codec = codec_for("event")
    return [Event.from_avro(codec.decode(v)) for v in publisher.values(topic)]


def decoded_dead_letters(publisher: RecordingPublisher, topic: str = "dlq") -> list[DeadLetter]:
    codec = codec_for("dead_letter")
    return [DeadLetter.from_avro(codec.decode(v)) for v in publisher.values(topic)]


def memory_wiring(
    environ: dict[str, str] | None = None, clock: FakeClock | None = None
) -> tuple[Wiring, RecordingPublisher, MemoryCursorStore, FakeClock, RecordingMetrics]:
    """A :class:`~producers.poll.Wiring` of in-memory fakes writing to topics ``raw`` and ``dlq``."""
    publisher, cursors = RecordingPublisher(), MemoryCursorStore()
    clock = clock or FakeClock()
    metrics = RecordingMetrics()
    wiring = Wiring(
        publisher,
        cursors,
        "raw",
        "dlq",
        clock=clock,
        metrics=metrics,
        environ=environ or {},
        rng=random.Random(7),
    )
    return wiring, publisher, cursors, clock, metrics
