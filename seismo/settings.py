"""Typed, frozen settings read from ``SEISMO_*`` environment variables.

Nothing is read from a config file in the working directory.  Every
component receives a :class:`Settings` instance; nothing reads the
environment on its own.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Port = Annotated[int, Field(ge=1, le=65535)]
"""A TCP port: a whole number from 1 to 65535."""

_TOPIC_CHARS = re.compile(r"[A-Za-z0-9._-]*")
_NOT_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def _home(*parts: str) -> Path:
    return Path.home().joinpath(*parts)


class Settings(BaseSettings):
    """Seismo's configuration; see the README's configuration table."""

    model_config = SettingsConfigDict(env_prefix="SEISMO_", frozen=True, extra="ignore")

    kafka_bootstrap: str | None = Field(
        default=None,
        description="Kafka bootstrap servers; unset means the local broker of `seismo kafka`.",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis URL (redis://, rediss:// for TLS, a password as rediss://:pass@host:6380/0); "
        "unset means the local redis-server Seismo starts.",
    )
    redis_password: SecretStr | None = Field(
        default=None,
        description="Redis AUTH password, put into the URL when it has none (e.g. from a Secret).",
    )
    redis_ca_file: Path | None = Field(
        default=None, description="CA bundle that verifies a rediss:// server (default: the system's)."
    )
    namespace: str = Field(
        default="seismo",
        description="Names this deployment: consumer groups, Redis keys and cache keys derive from it "
        "(and topics, when it is set), so deployments sharing a broker and a Redis never meet. "
        "Unset: SEISMO_APP_ID, else SEISMO_TOPIC_PREFIX without its dot (other characters than "
        "letters, digits, '.', '_', '-' made '-'), else seismo.",
    )
    topic_prefix: str = Field(
        default="",
        description="Prefix for every topic name; default `{namespace}.` when SEISMO_NAMESPACE is set "
        "(none for `seismo`), else none.",
    )
    app_id: str = Field(default="seismo", description="Consumer group prefix; default the namespace.")
    partitions: int = Field(default=3, ge=1, description="Partitions of the topics Seismo creates.")
    replication_factor: int = Field(default=1, ge=1, description="Replication of Seismo's topics.")
    raw_retention_ms: int = Field(
        default=7 * 24 * 3600 * 1000, description="Retention of seismo.events.raw (7 days)."
    )

    cache_dir: Path = Field(
        default_factory=lambda: _home(".cache", "seismo"), description="Downloaded Kafka jars."
    )
    state_dir: Path = Field(
        default_factory=lambda: _home(".local", "state", "seismo"),
        description="Local broker/redis data, logs and pid files.",
    )

    local_kafka_port: Port = Field(default=29092, description="Port of the local broker.")
    local_kafka_controller_port: Port = 29093
    local_kafka_heap: str = "768m"
    local_redis_port: Port = 26379

    state_backend: Literal["redis", "memory"] = Field(
        default="redis", description="Where the correlator keeps its state; memory is lost on restart."
    )
    mask_rules_file: Path | None = Field(
        default=None, description="TOML/YAML file of extra placeholder rules for every service."
    )
    embedder: Literal["minilm", "hash", "off"] = Field(
        default="minilm",
        description="Template embeddings for novelty: all-MiniLM-L6-v2 (numpy), a hashing stand-in, or off.",
    )
    embed_adapter: Path | None = Field(
        default=None, description="An adapter file or fine-tuned model folder from `seismo embed finetune`: "
        "template vectors go through it (a new model version, so cached vectors of the base model are not "
        "reused).",
    )
    embed_lru_size: int = Field(default=10_000, ge=1, description="Template vectors kept in process.")
    search_lookback_s: float = Field(
        default=6 * 3600.0, gt=0,
        description="How far back (arrival time on seismo.events.enriched) the gateway's search_events "
        "reaches; a restarted gateway re-reads this much of the topic.",
    )
    search_max_events: int = Field(
        default=100_000, ge=1,
        description="Most recent enriched events the gateway keeps searchable; the oldest go first.",
    )
    worker_metrics_port: Port | None = Field(
        default=None, description="Port of the worker's Prometheus /metrics endpoint; unset disables it."
    )
    worker_processes: int = Field(
        default=1, ge=1, le=64, description="Processes per step that `seismo worker` runs."
    )
    worker_native_threads: int = Field(
        default=1, ge=1, le=256,
        description="Threads each worker process lets native libraries use (numpy's BLAS for the embedder, "
        "OpenMP for faiss, torch). A worker scales by processes; extra threads per process only spin "
        "against the other steps on the same cores.",
    )
    worker_upstream_nice: int = Field(
        default=10, ge=0, le=19,
        description="Niceness of the normalize step when `seismo worker` runs it beside the later steps on "
        "one machine: the steps after it get the CPU first, so little waits between them and none is "
        "left to finish alone after it. 0 turns it off.",
    )
    worker_batch_size: int = Field(
        default=1000, ge=1, description="Records a step takes from the broker per fetch."
    )
    worker_checkpoint_s: float = Field(
        default=5.0, gt=0,
        description="Seconds between a step's checkpoints under a backlog (outputs acknowledged, states "
        "saved, offsets committed); a crash replays at most this much. A caught-up step checkpoints at once.",
    )
    worker_session_timeout_s: float = Field(
        default=10.0, ge=6.0, description="Consumer-group session timeout of the worker."
    )
    worker_instance_id: str | None = Field(
        default=None,
        description="Static group membership id, unique per worker replica (e.g. a StatefulSet pod "
        "name): a restarted worker gets its partitions back without a rebalance.",
    )
    correlate_window_s: float = Field(
        default=300.0, gt=0, description="Anomalies of one service closer than this join one incident."
    )
    resolve_quiet_s: float = Field(
        default=600.0, gt=0, description="Event-time quiet period after which an incident resolves."
    )
    max_evidence: int = Field(default=200, ge=1, description="Evidence kept per incident.")
    correlate_lateness_s: float = Field(
        default=30.0, ge=0, description="The most event-time lateness a signal may have behind its own "
        "partition before it is ordered at the partition's edge.  Each partition waits as long as the "
        "disorder it has shown asks (1.5x its recent worst), between SEISMO_CORRELATE_MIN_LATENESS_S and "
        "this; the wait is the floor of incident latency on live traffic.",
    )
    correlate_min_lateness_s: float = Field(
        default=0.5, ge=0, description="The least a partition's signals wait for its stragglers (a partition "
        "whose events arrive in order waits this long; set it equal to SEISMO_CORRELATE_LATENESS_S for a "
        "fixed lateness).",
    )
    correlate_lookback_s: float = Field(
        default=600.0, gt=0, description="How far back an opening incident absorbs the pending signals of "
        "the services it links to (its onset).",
    )
    correlate_reopen_grace_s: float = Field(
        default=900.0, ge=0, description="A resolved incident reopens when its service and template return "
        "within this event-time period.",
    )
    llm_url: str | None = Field(
        default=None, description="Base URL of an OpenAI-compatible API (…/v1) that writes incident titles "
        "and summaries; unset: the deterministic label only.",
    )
    llm_model: str = Field(default="gpt-4o-mini", description="Model name sent to SEISMO_LLM_URL.")
    llm_api_key: SecretStr | None = Field(default=None, description="Bearer token for SEISMO_LLM_URL.")
    llm_timeout_s: float = Field(default=10.0, gt=0, description="Seconds to wait for one LLM label.")
    correlate_open_alpha: float = Field(
        default=1e-3, gt=0, lt=1, description="Poisson tail below which a service's burst of error signals "
        "beats its background rate and opens an incident.",
    )
    score_window_s: float = Field(
        default=60.0, gt=0, description="Tumbling event-time window of the scorer's counts and error rates."
    )
    score_z_threshold: float = Field(
        default=6.0, gt=0,
        description="Robust z-score from which a window's count or error rate is anomalous.",
    )
    score_novelty_threshold: float = Field(
        default=0.5, ge=0, le=1,
        description="Novelty from which a service's first use of a template is anomalous.",
    )
    score_probation_windows: int = Field(
        default=5, ge=1, description="Closed windows of baseline before a service's windows are judged."
    )

    gateway_host: str = "127.0.0.1"
    gateway_port: Port = 8765
    gateway_transport: Literal["stdio", "streamable-http"] = "streamable-http"

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = Field(
        default="text", description="Log lines as text (UTC time, level, logger, message) or JSON objects."
    )

    @model_validator(mode="before")
    @classmethod
    def _derive_names(cls, data: Any) -> Any:
        """Fill the unset names from the namespace (see the fields' descriptions)."""
        if not isinstance(data, dict):
            return data
        given = {k: v for k, v in data.items() if v is not None}
        out = dict(data)
        if "namespace" in given:
            namespace = str(given["namespace"])
            out.setdefault("topic_prefix", "" if namespace == "seismo" else f"{namespace}.")
        else:  # derived names are made valid ones: characters Kafka refuses become '-'
            prefix = str(given.get("topic_prefix") or "").rstrip(".")
            derived = _NOT_NAME.sub("-", str(given.get("app_id") or prefix))[:100].strip("-")
            namespace = derived or "seismo"
            out["namespace"] = namespace
        out.setdefault("app_id", namespace)
        return out

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        if not value or not _TOPIC_CHARS.fullmatch(value) or len(value) > 100:
            raise ValueError("a namespace is 1-100 letters, digits, '.', '_' or '-'")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_any_case(cls, value: object) -> object:
        """``info`` and ``INFO`` are the same level."""
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _format_any_case(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("topic_prefix")
    @classmethod
    def _topic_prefix(cls, value: str) -> str:
        """Kafka topic names allow only ASCII letters, digits, ``.``, ``_`` and ``-``."""
        if not _TOPIC_CHARS.fullmatch(value):
            bad = sorted({c for c in value if not _TOPIC_CHARS.fullmatch(c)})
            raise ValueError(f"Kafka topic names allow only letters, digits, '.', '_' and '-' "
                             f"(found {' '.join(repr(c) for c in bad)})")
        if len(value) > 200:
            raise ValueError("at most 200 characters (Kafka topic names end at 249)")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(_REDIS_SCHEMES):
            raise ValueError("a Redis URL starts with redis://, rediss:// or unix:// "
                             "(e.g. redis://127.0.0.1:6379/0)")
        return value

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap(cls, value: str | None) -> str | None:
        """``host:port`` entries separated by commas (a ``PLAINTEXT://``-style scheme is allowed)."""
        if value is None:
            return value
        for entry in value.split(","):
            host, _, port = entry.strip().rpartition("://")[2].rpartition(":")
            if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
                raise ValueError(f"{entry.strip()!r} is not host:port (e.g. 127.0.0.1:9092; "
                                 "several separated by commas)")
        return value

    @property
    def local_bootstrap(self) -> str:
        return f"127.0.0.1:{self.local_kafka_port}"

    @property
    def bootstrap(self) -> str:
        """The bootstrap servers every client uses."""
        return self.kafka_bootstrap or self.local_bootstrap

    @property
    def local_redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.local_redis_port}/0"

    @property
    def redis(self) -> str:
        """The Redis URL every client uses: with the password and CA file when they are set."""
        url = self.redis_url or self.local_redis_url
        parts = urlsplit(url)
        if self.redis_password is not None and parts.scheme != "unix" and not parts.password:
            secret = quote(self.redis_password.get_secret_value(), safe="")
            user = quote(parts.username, safe="") if parts.username else ""
            parts = parts._replace(netloc=f"{user}:{secret}@{parts.netloc.rpartition('@')[2]}")
        if self.redis_ca_file is not None and parts.scheme == "rediss":
            extra = f"ssl_ca_certs={quote(str(self.redis_ca_file), safe='/')}"
            parts = parts._replace(query=f"{parts.query}&{extra}" if parts.query else extra)
        return urlunsplit(parts)

    @property
    def redis_display(self) -> str:
        """:attr:`redis` with the password masked, for logs and ``seismo doctor``."""
        parts = urlsplit(self.redis)
        if not parts.password:
            return urlunsplit(parts)
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))

    @property
    def redis_prefix(self) -> str:
        """``seismo:{namespace}``: the start of every Redis key of this deployment."""
        return f"seismo:{self.namespace}"

    @property
    def state_key(self) -> str:
        """The Redis hash of the steps' saved states (``seismo:{namespace}:state``)."""
        return f"{self.redis_prefix}:state"

    @property
    def embed_cache_prefix(self) -> str:
        """Prefix of the embedding cache's Redis keys (``seismo:{namespace}:embed``)."""
        return f"{self.redis_prefix}:embed"

    def group_id(self, step: str) -> str:
        """The consumer group of ``step`` (``{app_id}-{step}``, e.g. ``seismo-score``)."""
        return f"{self.app_id}-{step}"
