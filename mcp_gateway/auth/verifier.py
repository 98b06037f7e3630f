"""The MCP SDK's ``TokenVerifier`` for Seismo: API keys first, then (optionally) OAuth 2.1 JWTs.

An accepted caller becomes an ``AccessToken`` whose ``client_id`` is the key id (or the JWT's
``sub``) and whose single scope is its role.  Anything else is None, which the SDK turns into
a 401 with ``WWW-Authenticate`` (naming the RFC 9728 metadata when a JWT issuer is configured).
"""

from __future__ import annotations

import logging
from typing import Any

import anyio.to_thread
from mcp.server.auth.provider import AccessToken

from mcp_gateway.auth.keys import KeyFileError, KeyStore
from mcp_gateway.auth.roles import Role

log = logging.getLogger(__name__)

ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA"]


class JwtVerifier:
    """Checks signature (JWKS, keys cached), ``iss``, ``aud``, ``exp``/``nbf``; maps a claim to a role."""

    def __init__(self, issuer: str, jwks_url: str, audience: str, role_claim: str = "seismo_role") -> None:
        import jwt

        self.issuer = issuer
        self.audience = audience
        self.role_claim = role_claim
        self._jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300, timeout=5)

    def verify(self, token: str) -> AccessToken | None:
        """Blocking (may fetch the JWKS); None for any invalid token."""
        import jwt

        try:
            key = self._jwks.get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token, key.key, algorithms=ALGORITHMS, audience=self.audience, issuer=self.issuer,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            log.info("bearer JWT refused: %s", exc)
            return None
        raw = claims.get(self.role_claim)
        scopes = str(claims.get("scope", "")).split()
        role = next((r for r in (raw, *[s.removeprefix("seismo:") for s in scopes]) if r in _ROLES), None)
        if role is None:
            log.info("bearer JWT of %s names no Seismo role", claims.get("sub"))
            return None
        return AccessToken(token=token, client_id=f"jwt:{claims['sub']}", scopes=[role],
                           expires_at=int(claims["exp"]), resource=self.audience, subject=str(claims["sub"]),
                           claims={"iss": claims["iss"]})


_ROLES = {r.value for r in Role}


class SeismoTokenVerifier:
    """API keys from a :class:`KeyStore`, then JWTs when a :class:`JwtVerifier` is given."""

    def __init__(self, keys: KeyStore, jwt: JwtVerifier | None = None) -> None:
        self.keys = keys
        self.jwt = jwt

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            key = self.keys.verify(token)
        except KeyFileError as exc:
            log.error("%s", exc)
            return None
        if key is not None:
            claims = {"rate_per_minute": key.rate_per_minute} if key.rate_per_minute else None
            return AccessToken(token=token, client_id=key.id, scopes=[key.role], claims=claims)
        if self.jwt is not None and token.count(".") == 2:
            return await anyio.to_thread.run_sync(self.jwt.verify, token)
        return None
