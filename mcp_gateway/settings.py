"""The gateway's own settings: authentication, TLS, audit, budgets and deep links.

Read from ``SEISMO_GATEWAY_*`` variables (the shared :class:`seismo.settings.Settings`
keeps the host, port and transport).  Frozen; secrets are never logged.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class GatewaySettings(BaseSettings):
    """What the gateway needs beyond :class:`seismo.settings.Settings`; see the README."""

    model_config = SettingsConfigDict(env_prefix="SEISMO_GATEWAY_", frozen=True, extra="ignore")

    keys_file: Path | None = Field(
        default=None,
        description="JSON file of hashed API keys (`seismo keys`); unset: STATE_DIR/gateway/keys.json.",
    )
    audit_file: Path | None = Field(
        default=None, description="Where one JSON line per call goes; unset: STATE_DIR/gateway/audit.jsonl."
    )
    rate_per_minute: float = Field(default=600.0, gt=0, description="Calls per minute per key.")
    rate_burst: int = Field(default=60, ge=1, description="Calls a key may make at once.")
    token_budget: int = Field(
        default=4000,
        ge=200,
        le=100_000,
        description="Approximate tokens (characters / 4) a tool answer may take by default.",
    )
    tls_cert: Path | None = Field(
        default=None, description="PEM certificate chain; with tls_key enables TLS."
    )
    tls_key: Path | None = Field(default=None, description="PEM private key of tls_cert.")
    jwt_issuer: str | None = Field(
        default=None, description="OAuth 2.1 issuer whose bearer JWTs are accepted (with jwt_jwks_url)."
    )
    jwt_jwks_url: str | None = Field(default=None, description="The issuer's JWKS document.")
    jwt_audience: str | None = Field(
        default=None, description="Expected `aud` of JWTs; unset: the gateway's resource URL."
    )
    jwt_role_claim: str = Field(default="seismo_role", description="JWT claim naming the caller's role.")
    resource_url: str | None = Field(
        default=None,
        description="The public URL of /mcp (RFC 9728 resource); unset: built from host and port.",
    )
    sentry_url: str | None = Field(default=None, description="Base URL of Sentry, for deep links.")
    grafana_url: str | None = Field(default=None, description="Base URL of Grafana, for deep links.")
    kubernetes_dashboard_url: str | None = Field(
        default=None, description="Base URL of a Kubernetes dashboard, for deep links."
    )
    cloudwatch_region: str | None = Field(
        default=None, description="AWS region of the CloudWatch console, for deep links."
    )
    sources_config: Path | None = Field(
        default=None, description="Poller config (as `seismo poll`): its sources get live read-only tools."
    )
    noop_tool: bool = Field(default=False, description="Register a no-op tool (benchmarks only).")
