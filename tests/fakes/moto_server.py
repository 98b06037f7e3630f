"""A real moto server process on 127.0.0.1 and a free port, for tests that talk to AWS APIs over HTTP.

Use :func:`running_moto` as a context manager (or wrap it in a fixture)::

    with running_moto() as moto:
        boto3.client("logs", endpoint_url=moto.url, ...)

It starts ``python -m moto.server`` as a child process, waits (with a deadline,
no fixed sleeps) until it answers HTTP, and stops it on exit.  A server that
does not come up raises ``RuntimeError`` with its output, so the test fails loudly.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from tests.kafka_utils import free_port


@dataclass(frozen=True)
class Credentials:
    key_id: str = "testing"
    secret: str = "testing"


CREDENTIALS = Credentials()




@dataclass(frozen=True)
class MotoServer:
    url: str
    process: subprocess.Popen[bytes]

    def reset(self) -> None:
        """Forget every resource the server holds (``POST /moto-api/reset``)."""
        httpx.post(f"{self.url}/moto-api/reset", timeout=10).raise_for_status()


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/moto-api/data.json", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def running_moto(timeout: float = 60.0, env: Mapping[str, str] | None = None) -> Iterator[MotoServer]:
    """A moto server for the duration of the block; raises RuntimeError if it does not start in time.

    ``env`` adds to the server's environment, e.g. ``INITIAL_NO_AUTH_ACTION_COUNT`` to make it
    enforce IAM policies after that many unauthenticated calls."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env={**os.environ, **(env or {})})
        try:
            deadline = time.monotonic() + timeout
            while not _answers(url):
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"moto server did not start on {url}: {log.read()[-2000:]!r}")
                time.sleep(0.1)  # polling the server's readiness, bounded by the deadline
            yield MotoServer(url, process)
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
