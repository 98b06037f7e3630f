"""The gateway over HTTPS: TLS 1.2 or later, MCP calls with a key, and a renewed certificate
served without a restart."""

from __future__ import annotations

import ipaddress
import socket
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mcp_gateway.auth.keys import KeyStore
from mcp_gateway.auth.roles import Role
from mcp_gateway.client import gateway_client
from seismo.topics import ensure_topics
from tests.kafka_utils import Env, free_port, stop, wait_for

pytestmark = pytest.mark.kafka


def issue(directory: Path, name: str) -> bytes:
    """Write cert.pem/key.pem for 127.0.0.1 (self-signed); return the certificate's DER."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    (directory / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert.public_bytes(serialization.Encoding.DER)


def served(port: int) -> tuple[bytes, str]:
    """The certificate (DER) the gateway presents now, and the negotiated TLS version."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        return der, str(tls.version())


def test_the_gateway_serves_https_and_loads_a_renewed_certificate_without_a_restart(seismo_env: Env) -> None:
    tls_dir = seismo_env.state_dir / "tls"
    tls_dir.mkdir(parents=True)
    first = issue(tls_dir, "first")
    seismo_env.extra.update({
        "SEISMO_EMBEDDER": "off", "SEISMO_STATE_BACKEND": "memory",
        "SEISMO_GATEWAY_KEYS_FILE": str(seismo_env.state_dir / "keys.json"),
        "SEISMO_GATEWAY_TLS_CERT": str(tls_dir / "cert.pem"),
        "SEISMO_GATEWAY_TLS_KEY": str(tls_dir / "key.pem"),
    })
    _, token = KeyStore(seismo_env.state_dir / "keys.json").create("tls", Role.VIEWER)
    ensure_topics(seismo_env.settings)
    port = free_port()
    proc = seismo_env.spawn("gateway", "--port", str(port), log_name="gateway")
    trust = ssl.create_default_context(cafile=str(tls_dir / "cert.pem"))

    def healthy() -> bool:
        assert proc.poll() is None, seismo_env.log_tail("gateway")
        try:
            return httpx.get(f"https://127.0.0.1:{port}/healthz", verify=trust, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    async def call() -> bool:
        async with gateway_client(f"https://127.0.0.1:{port}/mcp", token, verify=trust) as client:
            return not (await client.call_tool("list_incidents", {})).is_error

    try:
        wait_for(healthy, 60, "the gateway to answer over HTTPS")
        der, version = served(port)
        assert der == first and version in ("TLSv1.2", "TLSv1.3")
        assert anyio.run(call)
        second = issue(tls_dir, "second")
        wait_for(lambda: served(port)[0] == second, 15, "the renewed certificate to be served")
    except BaseException:
        print(seismo_env.log_tail("gateway"))
        raise
    finally:
        stop(proc)
