"""TLS for the HTTP transport: TLS 1.2 at least (1.3 preferred by OpenSSL's negotiation), and the
certificate and key re-read when either file changes (a renewed certificate needs no restart).

:class:`CertWatcher` polls the files' modification times on a daemon thread and loads the new
pair into the live ``ssl.SSLContext``; new handshakes use it, open connections keep theirs.  A
pair that does not load (a half-written renewal) is logged and retried at the next change.
"""

from __future__ import annotations

import logging
import ssl
import threading
from pathlib import Path

log = logging.getLogger(__name__)


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server context with TLS 1.2 as the floor; raises ``ssl.SSLError``/``OSError`` on a bad pair."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx


def harden(ctx: ssl.SSLContext) -> None:
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2


class CertWatcher:
    def __init__(self, ctx: ssl.SSLContext, cert: Path, key: Path, interval_s: float = 2.0) -> None:
        self.ctx, self.cert, self.key, self.interval_s = ctx, cert, key, interval_s
        self.reloads = 0
        self._stamp = self._stat()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tls-watch", daemon=True)

    def _stat(self) -> tuple[int, int]:
        try:
            return (self.cert.stat().st_mtime_ns, self.key.stat().st_mtime_ns)
        except OSError:
            return (0, 0)

    def check(self) -> bool:
        """Reload when the files changed; True when a new pair was loaded."""
        stamp = self._stat()
        if stamp == self._stamp or stamp == (0, 0):
            return False
        try:
            self.ctx.load_cert_chain(self.cert, self.key)
        except (ssl.SSLError, OSError) as exc:
            log.error("TLS certificate %s changed but does not load (kept the old one): %s", self.cert, exc)
            return False
        self._stamp = stamp
        self.reloads += 1
        log.info("TLS certificate %s reloaded", self.cert)
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.check()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
