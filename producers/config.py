"""The poller config file (``seismo poll SOURCE --config FILE``), TOML or YAML by extension.

Only the file named on the command line is read.  Tokens do not belong in
it: each source names the environment variable holding its token
(``token_env``), resolved by :func:`resolve_token` from the mapping the
caller passes.  See ``docs/sources.md`` for every key, with examples.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from producers.exceptions import ProducerError
from producers.mapping import MappingRules
from seismo.files import StructuredFileError, read_structured


class ConfigError(ProducerError):
    """The config file is missing, unparseable or invalid.  Operator: fix the file named in the message."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PollSettings(_Frozen):
    """Scheduling, rate limit and retries; every source section has these keys."""

    interval_s: float = Field(default=30.0, gt=0)
    rate_per_s: float = Field(default=5.0, gt=0, description="Average requests per second to the source.")
    burst: int = Field(default=10, ge=1)
    max_attempts: int = Field(default=5, ge=1, description="Tries per request on 429/5xx/timeouts.")
    backoff_base_s: float = Field(default=0.5, gt=0)
    backoff_cap_s: float = Field(default=60.0, gt=0)
    dedup_window: int = Field(default=10_000, ge=1)
    max_pages_per_cycle: int = Field(default=50, ge=1)
    timeout_s: float = Field(default=15.0, gt=0)
    object_attempts: int = Field(default=3, ge=1, description="Cycles one failing object is retried.")
    park_s: float = Field(default=900.0, ge=0, description="How long a failing object stays parked.")
    token: SecretStr | None = Field(default=None, description="Discouraged: prefer token_env.")
    token_env: str | None = None


class SentryConfig(PollSettings):
    base_url: str = "https://sentry.io"
    token_env: str | None = "SEISMO_SENTRY_TOKEN"
    organization: str = Field(min_length=1)
    projects: tuple[str, ...] = Field(min_length=1, description="Project slugs.")
    environment: str | None = None
    issues: bool = True
    issue_query: str = "is:unresolved"
    releases: bool = True
    performance: bool = True
    performance_window_s: int = Field(default=300, ge=60)
    page_size: int = Field(default=100, ge=1, le=100)


class GrafanaQuery(_Frozen):
    """One Prometheus or Loki expression run through ``/api/ds/query``."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    datasource_uid: str
    kind: Literal["prometheus", "loki"]
    expr: str
    service: str | None = Field(default=None, description="Fixed service; else mapped from labels.")
    unit: str | None = None
    max_lines: int = Field(default=1000, ge=1)


class GrafanaConfig(PollSettings):
    base_url: str
    token_env: str | None = "SEISMO_GRAFANA_TOKEN"
    org_id: int = 1
    annotations: bool = True
    annotation_tags: tuple[str, ...] = ()
    deploy_tags: tuple[str, ...] = ("deploy", "deployment", "release")
    alerts: bool = True
    dashboards: bool = True
    queries: tuple[GrafanaQuery, ...] = ()
    query_step_s: int = Field(default=60, ge=1)
    query_delay_s: int = Field(default=60, ge=0, description="Query up to now minus this (late data).")


class KubernetesConfig(PollSettings):
    kubeconfig: Path | None = None
    contexts: tuple[str, ...] = Field(default=(), description="Empty: the kubeconfig's current context.")
    in_cluster: bool = False
    namespaces: tuple[str, ...] = Field(default=("default",), description="Empty: all namespaces.")
    label_selector: str | None = None
    pods: bool = True
    events: bool = True
    logs: bool = True
    metrics: bool = True
    deployments: bool = True
    log_tail_lines: int = Field(default=200, ge=1)
    log_max_containers: int = Field(default=50, ge=1)
    watch_timeout_s: int = Field(default=10, ge=1)
    interval_s: float = Field(default=15.0, gt=0)


class PollersFile(_Frozen):
    """The whole file: service mapping plus one optional section per source."""

    mapping: MappingRules = MappingRules()
    sentry: SentryConfig | None = None
    grafana: GrafanaConfig | None = None
    kubernetes: KubernetesConfig | None = None
    cloudwatch: dict[str, Any] | None = Field(
        default=None, description="Validated by producers.sources.cloudwatch."
    )


def load_config(path: Path) -> PollersFile:
    """Parse ``path`` (``.toml``, ``.yaml`` or ``.yml``); raise :class:`ConfigError` with the reason."""
    try:
        data = read_structured(path, "poller config")
    except StructuredFileError as exc:
        raise ConfigError(str(exc)) from None
    try:
        return PollersFile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:5]
        )
        raise ConfigError(f"{path}: {problems}") from None


def resolve_token(section: PollSettings, environ: Mapping[str, str]) -> str | None:
    """The section's token: ``token`` if set in the file, else ``environ[token_env]``, else None."""
    if section.token is not None:
        return section.token.get_secret_value()
    if section.token_env:
        value = environ.get(section.token_env)
        return value or None
    return None
