"""A local ``redis-server`` on 127.0.0.1, used when ``SEISMO_REDIS_URL`` is unset."""

from __future__ import annotations

import shutil
from dataclasses import dataclass

import redis

from seismo.local.process import LocalServiceError, ManagedProcess, ProcessRecord
from seismo.settings import Settings


def redis_answers(url: str) -> bool:
    """True when a Redis at ``url`` answers PING within a second (a refused password: False)."""
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=1.0)
    except ValueError:  # not a Redis URL; Settings refuses these, direct callers may not
        return False
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@dataclass(frozen=True)
class RedisStatus:
    url: str
    managed: ProcessRecord | None
    reachable: bool


class LocalRedis:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.proc = ManagedProcess("redis", settings.state_dir)

    def status(self) -> RedisStatus:
        url = self.settings.redis
        return RedisStatus(url, self.proc.record(), redis_answers(url))

    def start(self, timeout: float = 20.0) -> RedisStatus:
        """Start redis-server unless one answers already.  Idempotent; blocks until PING works."""
        if self.settings.redis_url:
            raise LocalServiceError(f"SEISMO_REDIS_URL is set ({self.settings.redis_url}); starting none")
        current = self.status()
        if current.reachable:
            return current
        binary = shutil.which("redis-server")
        if binary is None:
            raise LocalServiceError(
                "redis-server not found: apt-get install -y redis-server, or set SEISMO_REDIS_URL"
            )
        self.proc.dir.mkdir(parents=True, exist_ok=True)
        port = self.settings.local_redis_port
        self.proc.start(
            [binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(self.proc.dir),
             "--save", "", "--appendonly", "no", "--protected-mode", "yes"],
            address=self.settings.local_redis_url,
            marker="redis-server",
            ready=lambda: redis_answers(self.settings.local_redis_url),
            timeout=timeout,
        )
        return self.status()

    def stop(self) -> bool:
        return self.proc.stop()
