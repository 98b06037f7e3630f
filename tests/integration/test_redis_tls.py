"""Redis over TLS with AUTH: a redis-server of our own on a loopback port, a CA made for the test.

``SEISMO_REDIS_URL=rediss://...`` with ``SEISMO_REDIS_PASSWORD`` and ``SEISMO_REDIS_CA_FILE``
reaches it through the state store and the embedding cache; a wrong password or an unknown CA
is refused at once instead of being retried as if Redis were down.
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from seismo.settings import Settings
from stream_processors.embed import CachedEmbedder, HashEmbedder
from stream_processors.runtime.state import RedisStateStore
from tests.kafka_utils import free_port, wait_for

PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class TlsRedis:
    port: int
    ca_file: Path

    def settings(self, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "redis_url": f"rediss://127.0.0.1:{self.port}/0", "redis_password": SecretStr(PASSWORD),
            "redis_ca_file": self.ca_file, "namespace": "tls-test", **overrides,
        }
        return Settings.model_validate(values)


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate it signed for 127.0.0.1: (ca.pem, server.pem, server.key)."""
    now = datetime.datetime.now(datetime.UTC)
    valid_from, valid_to = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "seismo test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(valid_from).not_valid_after(valid_to)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(valid_from).not_valid_after(valid_to)
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(_pem(key))
    return paths


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRedis]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server not found: apt-get install -y redis-server")
    folder = tmp_path_factory.mktemp("tls-redis")
    ca, cert, key = _certificates(folder)
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca),
         "--tls-auth-clients", "no", "--requirepass", PASSWORD, "--save", "", "--appendonly", "no",
         "--dir", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )
    server = TlsRedis(port, ca)

    def answers() -> bool:
        client = redis.Redis.from_url(server.settings().redis, socket_timeout=1.0)
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return proc.poll() is not None  # exited: stop waiting, the assert below says why
        finally:
            client.close()

    try:
        wait_for(answers, 20, "the TLS redis-server to answer")
        assert proc.poll() is None, f"redis-server exited with {proc.returncode} (built without TLS?)"
        yield server
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_state_store_reaches_redis_over_tls_with_the_password(tls_redis: TlsRedis) -> None:
    async def run() -> None:
        store = RedisStateStore.from_settings(tls_redis.settings())
        await store.save("score:api", {"watermark_us": 7})
        assert await store.load("score:api") == {"watermark_us": 7}
        await store.close()

    anyio.run(run)


def test_the_embedding_cache_reaches_redis_over_tls(tls_redis: TlsRedis) -> None:
    settings = tls_redis.settings()
    first = CachedEmbedder(HashEmbedder(), settings.redis, namespace=settings.embed_cache_prefix)
    first.embed_keyed(["T1"], ["user <*> logged in"])
    restarted = CachedEmbedder(HashEmbedder(), settings.redis, namespace=settings.embed_cache_prefix)
    assert set(restarted.cached(["T1"])) == {"T1"} and restarted.redis_up
    first.close()
    restarted.close()


@pytest.mark.parametrize(
    "overrides",
    [{"redis_password": SecretStr("wrong")}, {"redis_ca_file": None}],
    ids=["a wrong password", "a server certificate the system CAs do not know"],
)
def test_a_misconfigured_connection_is_refused_at_once_not_retried_as_if_redis_were_down(
    tls_redis: TlsRedis, overrides: dict[str, object]
) -> None:
    async def run() -> None:
        store = RedisStateStore.from_settings(tls_redis.settings(**overrides))
        with anyio.fail_after(10), pytest.raises(redis.ConnectionError):
            await store.load("score:api")
        await store.close()

    anyio.run(run)
