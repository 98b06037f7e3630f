"""API keys, roles, rate limits, bearer JWTs and TLS reloads of the gateway (no broker)."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import anyio
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from mcp_gateway.audit import AuditLog
from mcp_gateway.auth.keys import KeyFileError, KeyStore
from mcp_gateway.auth.roles import Role, required_role, role_of
from mcp_gateway.auth.verifier import JwtVerifier, SeismoTokenVerifier
from mcp_gateway.context import GatewayContext
from mcp_gateway.errors import Forbidden, NotReady, RateLimited
from mcp_gateway.guard import Guard, RateLimiter
from mcp_gateway.store import IncidentStore
from mcp_gateway.tls import CertWatcher, server_context


def test_a_created_key_verifies_and_only_its_hash_is_stored(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json")
    key, token = store.create("ci", Role.INVESTIGATOR)
    assert store.verify(token) == key and key.role == "investigator"
    raw = (tmp_path / "keys.json").read_text()
    assert token.rsplit("-", 1)[1] not in raw and key.hash in raw
    assert (tmp_path / "keys.json").stat().st_mode & 0o777 == 0o600
    assert store.verify(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert store.verify("sk-seismo-nope") is None and store.verify("bearer-junk") is None


def test_a_key_revoked_by_another_process_is_refused_at_its_next_use(tmp_path: Path) -> None:
    gateway_view, cli_view = KeyStore(tmp_path / "keys.json"), KeyStore(tmp_path / "keys.json")
    key, token = cli_view.create("short", Role.VIEWER)
    assert gateway_view.verify(token) is not None
    cli_view.revoke(key.id)
    assert gateway_view.verify(token) is None
    with pytest.raises(KeyError):
        cli_view.revoke("missing")


def test_a_corrupt_keys_file_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text("{not json")
    with pytest.raises(KeyFileError, match=r"keys\.json"):
        KeyStore(path).keys()
    verifier = SeismoTokenVerifier(KeyStore(path))
    assert anyio.run(verifier.verify_token, "sk-seismo-a-b") is None


def test_roles_order_and_what_each_may_call() -> None:
    live = {"k8s_list_pods", "custom_live"}
    assert required_role("list_incidents", live) is Role.VIEWER
    assert required_role("custom_live", live) is Role.INVESTIGATOR
    assert required_role("grafana_search_dashboards", set()) is Role.INVESTIGATOR
    assert required_role("record_feedback", live) is Role.ADMIN
    assert role_of(["seismo:admin", "viewer"]) is Role.ADMIN and role_of(["other"]) is None


def test_the_guard_refuses_by_role_then_rate_then_readiness() -> None:
    store = IncidentStore()
    now = [0.0]
    guard = Guard(GatewayContext(store), AuditLog(None), RateLimiter(60.0, 2, clock=lambda: now[0]),
                  live_tools={"k8s_logs"})
    with pytest.raises(Forbidden, match="investigator"):
        guard.check("tools/call", "k8s_logs", "k1", Role.VIEWER)
    with pytest.raises(Forbidden):
        guard.check("tools/call", "list_incidents", "k1", None)
    with pytest.raises(NotReady):
        guard.check("tools/call", "k8s_logs", "k1", Role.INVESTIGATOR)
    store.caught_up.set()
    guard.check("tools/call", "list_incidents", "k1", Role.VIEWER)
    with pytest.raises(RateLimited) as limited:
        guard.check("tools/call", "list_incidents", "k1", Role.VIEWER)
    assert limited.value.retry_after == pytest.approx(1.0)
    guard.check("tools/call", "list_incidents", "k2", Role.VIEWER)  # another key has its own bucket
    now[0] = 1.0
    guard.check("tools/call", "list_incidents", "k1", Role.VIEWER)


@pytest.fixture(scope="module")
def issuer() -> Iterator[tuple[str, Any]]:
    """A JWKS served on loopback and the private key that signs tokens."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json", private
    finally:
        server.shutdown()
        server.server_close()


def sign(private: Any, **claims: Any) -> str:
    base = {"iss": "https://idp.example", "aud": "https://seismo.example/mcp", "sub": "alice",
            "exp": int(time.time()) + 300, "seismo_role": "investigator"}
    return jwt.encode({**base, **claims}, private, algorithm="RS256", headers={"kid": "k1"})


def test_a_bearer_jwt_of_the_issuer_maps_to_its_role_and_anything_else_is_refused(
    issuer: tuple[str, Any], tmp_path: Path
) -> None:
    url, private = issuer
    verifier = SeismoTokenVerifier(KeyStore(tmp_path / "keys.json"), JwtVerifier(
        "https://idp.example", url, "https://seismo.example/mcp"))
    ok = anyio.run(verifier.verify_token, sign(private))
    assert ok is not None and ok.scopes == ["investigator"] and ok.client_id == "jwt:alice"
    scoped = anyio.run(verifier.verify_token, sign(private, seismo_role=None, scope="openid seismo:viewer"))
    assert scoped is not None and scoped.scopes == ["viewer"]
    for bad in (sign(private, aud="https://other.example"), sign(private, iss="https://evil.example"),
                sign(private, exp=int(time.time()) - 10), sign(private, seismo_role="root"),
                sign(rsa.generate_private_key(public_exponent=65537, key_size=2048))):
        assert anyio.run(verifier.verify_token, bad) is None


def self_signed(path: Path, name: str) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=1))
            .not_valid_after(now + timedelta(days=1)).sign(key, hashes.SHA256()))
    (path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                     serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()))


def test_tls_needs_1_2_and_a_renewed_certificate_is_loaded_without_a_restart(tmp_path: Path) -> None:
    self_signed(tmp_path, "first")
    ctx = server_context(tmp_path / "cert.pem", tmp_path / "key.pem")
    assert ctx.minimum_version is ssl.TLSVersion.TLSv1_2
    watcher = CertWatcher(ctx, tmp_path / "cert.pem", tmp_path / "key.pem")
    assert not watcher.check()
    (tmp_path / "key.pem").write_text("half-written")
    assert not watcher.check() and watcher.reloads == 0  # a broken pair keeps the old one
    self_signed(tmp_path, "second")
    assert watcher.check() and watcher.reloads == 1


def test_with_an_issuer_the_gateway_publishes_rfc9728_metadata_and_names_it_on_401(
    issuer: tuple[str, Any], tmp_path: Path
) -> None:
    from mcp.server.auth.settings import AuthSettings
    from starlette.testclient import TestClient

    from mcp_gateway.server import build_server

    url, private = issuer
    resource = "http://127.0.0.1:8765/mcp"
    verifier = SeismoTokenVerifier(KeyStore(tmp_path / "keys.json"),
                                   JwtVerifier("https://idp.example", url, resource))
    auth = AuthSettings(issuer_url="https://idp.example", resource_server_url=resource,  # type: ignore[arg-type]
                        validate_token_resource=False)
    store = IncidentStore()
    store.caught_up.set()
    app = build_server(GatewayContext(store), auth=auth, verifier=verifier).streamable_http_app()
    with TestClient(app, base_url="http://127.0.0.1:8765") as http:
        meta = http.get("/.well-known/oauth-protected-resource/mcp").json()
        assert meta["resource"] == resource and meta["authorization_servers"] == ["https://idp.example"]
        refused = http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert refused.status_code == 401
        assert 'resource_metadata="http://127.0.0.1:8765/.well-known/oauth-protected-resource/mcp"' in \
            refused.headers["www-authenticate"]
        token = sign(private, aud=resource)
        accepted = http.post("/mcp", headers={"Authorization": f"Bearer {token}",
                                              "Accept": "application/json, text/event-stream"},
                             json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                                 "protocolVersion": "2025-06-18", "capabilities": {},
                                 "clientInfo": {"name": "t", "version": "0"}}})
        assert accepted.status_code == 200, accepted.text
