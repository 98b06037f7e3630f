"""API keys stored hashed in a JSON file; ``seismo keys`` writes it, every gateway reads it.

A key is ``sk-seismo-<id>-<secret>``: the id is public (audit lines name it), only the SHA-256
of the 256-bit random secret is stored (a slow KDF adds nothing to a secret that long).  The
file is re-read whenever its modification time or size changes, so a revoked key stops working
at its next call, without a restart.  Writes are atomic (a temporary file renamed) and mode 0600.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from mcp_gateway.auth.roles import Role

PREFIX = "sk-seismo-"


class KeyFileError(ValueError):
    """The keys file is not one this gateway wrote; fix or remove it (the message names it)."""


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    role: str
    hash: str
    created_at: str
    revoked_at: str | None = None
    rate_per_minute: float | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_key(token: str) -> tuple[str, str] | None:
    """``(id, secret)`` of a well-formed key, else None."""
    if not token.startswith(PREFIX):
        return None
    kid, sep, secret = token[len(PREFIX):].partition("-")
    if not sep or not kid or not secret:
        return None
    return kid, secret


class KeyStore:
    """The keys file.  Thread-safe; ``verify`` re-reads the file when it changed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._keys: dict[str, ApiKey] = {}

    def _load(self) -> dict[str, ApiKey]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._keys = None, {}
            return self._keys
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            try:
                data = json.loads(self.path.read_text("utf-8"))
                keys = {k["id"]: ApiKey(**k) for k in data.get("keys", [])}
            except (OSError, ValueError, TypeError, KeyError) as exc:
                raise KeyFileError(f"cannot read the keys file {self.path}: {exc}") from exc
            self._stamp, self._keys = stamp, keys
        return self._keys

    def keys(self) -> list[ApiKey]:
        with self._lock:
            return sorted(self._load().values(), key=lambda k: k.created_at)

    def verify(self, token: str) -> ApiKey | None:
        """The active key ``token`` is, or None (unknown, revoked or malformed)."""
        parts = split_key(token)
        if parts is None:
            return None
        kid, secret = parts
        with self._lock:
            key = self._load().get(kid)
        if key is None or not key.active or not hmac.compare_digest(key.hash, _digest(secret)):
            return None
        return key

    def _save(self, keys: dict[str, ApiKey]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
        body = json.dumps({"keys": [asdict(k) for k in keys.values()]}, indent=2)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(body)
        os.replace(tmp, self.path)
        self._stamp = None

    def create(self, name: str, role: Role, rate_per_minute: float | None = None) -> tuple[ApiKey, str]:
        """Add a key; returns it and the full secret token (shown once, never stored)."""
        kid, secret = secrets.token_hex(4), secrets.token_urlsafe(32).replace("-", "_")
        key = ApiKey(id=kid, name=name, role=role.value, hash=_digest(secret),
                     created_at=datetime.now(UTC).isoformat(), rate_per_minute=rate_per_minute)
        with self._lock:
            keys = dict(self._load())
            keys[kid] = key
            self._save(keys)
        return key, f"{PREFIX}{kid}-{secret}"

    def revoke(self, kid: str) -> ApiKey:
        """Mark a key revoked; raises KeyError for an unknown id."""
        with self._lock:
            keys = dict(self._load())
            key = keys[kid]
            if key.active:
                keys[kid] = ApiKey(**{**asdict(key), "revoked_at": datetime.now(UTC).isoformat()})
                self._save(keys)
            return keys[kid]


def default_keys_path(state_dir: Path) -> Path:
    return state_dir / "gateway" / "keys.json"
