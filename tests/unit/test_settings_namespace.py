"""One namespace names a deployment; SEISMO_APP_ID and SEISMO_TOPIC_PREFIX still work as before."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from seismo.settings import Settings


def _names(settings: Settings) -> tuple[str, str, str, str, str]:
    return (settings.namespace, settings.topic_prefix, settings.app_id, settings.state_key,
            settings.group_id("score"))


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, ("seismo", "", "seismo", "seismo:seismo:state", "seismo-score")),
        ({"SEISMO_NAMESPACE": "staging"},
         ("staging", "staging.", "staging", "seismo:staging:state", "staging-score")),
        ({"SEISMO_NAMESPACE": "seismo"}, ("seismo", "", "seismo", "seismo:seismo:state", "seismo-score")),
        ({"SEISMO_APP_ID": "legacy"}, ("legacy", "", "legacy", "seismo:legacy:state", "legacy-score")),
        ({"SEISMO_TOPIC_PREFIX": "dev."}, ("dev", "dev.", "dev", "seismo:dev:state", "dev-score")),
        ({"SEISMO_NAMESPACE": "prod", "SEISMO_TOPIC_PREFIX": "p.", "SEISMO_APP_ID": "grp"},
         ("prod", "p.", "grp", "seismo:prod:state", "grp-score")),
    ],
    ids=["defaults", "a namespace", "the default namespace keeps unprefixed topics", "a legacy app id",
         "a topic prefix alone no longer shares the default group and state", "explicit names win"],
)
def test_names_derive_from_the_namespace_unless_given(
    env: dict[str, str], expected: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("SEISMO_NAMESPACE", "SEISMO_TOPIC_PREFIX", "SEISMO_APP_ID"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert _names(Settings()) == expected


def test_a_namespace_with_characters_kafka_refuses_is_an_error() -> None:
    with pytest.raises(ValueError, match="namespace"):
        Settings(namespace="a/b")


def test_a_namespace_derived_from_an_app_id_kafka_would_refuse_is_made_valid() -> None:
    settings = Settings(app_id="team a/payments")
    assert (settings.namespace, settings.app_id, settings.state_key) == (
        "team-a-payments", "team a/payments", "seismo:team-a-payments:state"
    )


def test_a_bad_topic_prefix_is_reported_as_itself_not_as_a_namespace() -> None:
    with pytest.raises(ValueError, match="topic_prefix") as caught:
        Settings(topic_prefix="bad prefix/")
    assert "namespace" not in str(caught.value)


def test_the_redis_password_and_ca_file_go_into_the_url_and_never_into_its_display() -> None:
    settings = Settings(
        redis_url="rediss://redis:6380/0", redis_password=SecretStr("s3cr:t@"), redis_ca_file=Path("ca/x.pem")
    )
    assert settings.redis == "rediss://:s3cr%3At%40@redis:6380/0?ssl_ca_certs=ca/x.pem"
    assert "s3cr" not in settings.redis_display and "s3cr" not in repr(settings)


def test_a_password_in_the_url_is_kept_and_masked_in_its_display() -> None:
    settings = Settings(redis_url="rediss://:pass@host:6380/0")
    assert settings.redis == "rediss://:pass@host:6380/0"
    assert settings.redis_display == "rediss://:***@host:6380/0"


def test_a_redis_url_with_a_password_and_tls_configures_the_client() -> None:
    import redis.asyncio as aioredis

    settings = Settings(redis_url="rediss://:pass@host:6380/0", redis_ca_file=Path("ca.pem"))
    client = aioredis.Redis.from_url(settings.redis)
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["password"], kwargs["ssl_ca_certs"], kwargs["port"]) == ("pass", "ca.pem", 6380)
    assert client.connection_pool.connection_class.__name__ == "SSLConnection"
