"""Service mapping rules and the poller config file."""

from __future__ import annotations

from pathlib import Path

import pytest

from producers.config import ConfigError, load_config, resolve_token
from producers.mapping import MappingRules, ServiceMapper


def test_one_service_gets_the_same_name_from_every_source() -> None:
    mapper = ServiceMapper(
        MappingRules(
            sentry_projects={"payments-backend": "payments"},
            cloudwatch_log_groups={"/ecs/pay-*": "payments"},
            aliases={"payments-api": "payments"},
        )
    )
    assert mapper.for_k8s({"app.kubernetes.io/name": "payments", "app": "other"}) == "payments"
    assert mapper.for_k8s({"app": "Payments-API"}) == "payments-api"
    assert mapper.for_k8s({"app": "payments-api"}) == "payments"
    assert mapper.for_k8s({}, "payments-5f6d7c8b9-abcde") == "payments"
    assert mapper.for_sentry("payments-backend") == "payments"
    assert mapper.for_cloudwatch_log_group("/ecs/pay-prod") == "payments"
    assert mapper.for_cloudwatch_log_group("/aws/lambda/payments") == "payments"
    assert mapper.for_cloudwatch_dimensions({"ServiceName": "payments"}) == "payments"
    assert mapper.for_grafana({"service": "payments"}) == "payments"
    assert mapper.for_grafana({}, ["team:core", "service:payments"]) == "payments"


def test_an_observation_with_nothing_to_map_gets_the_default_service() -> None:
    mapper = ServiceMapper(MappingRules(default="unmapped"))
    assert mapper.for_grafana({}, ["deploy"]) == "unmapped"
    assert mapper.for_k8s(None) == "unmapped"
    assert mapper.for_sentry(None) == "unmapped"


def test_a_toml_config_file_loads_and_the_token_comes_from_the_named_variable(tmp_path: Path) -> None:
    path = tmp_path / "pollers.toml"
    path.write_text(
        '[mapping]\naliases = { "payments-api" = "payments" }\n\n'
        '[sentry]\norganization = "acme"\nprojects = ["payments"]\nrate_per_s = 2\n'
    )
    config = load_config(path)
    assert config.sentry is not None
    assert config.sentry.rate_per_s == 2
    assert config.mapping.aliases == {"payments-api": "payments"}
    assert resolve_token(config.sentry, {"SEISMO_SENTRY_TOKEN": "sntrys-1"}) == "sntrys-1"


def test_a_yaml_config_file_loads_kubernetes_and_grafana_sections(tmp_path: Path) -> None:
    path = tmp_path / "pollers.yaml"
    path.write_text(
        "kubernetes:\n  contexts: [prod, staging]\n  namespaces: [shop]\n"
        "grafana:\n  base_url: http://grafana:3000\n  queries:\n"
        "    - {name: errors, datasource_uid: prom, kind: prometheus, expr: 'up == 0'}\n"
    )
    config = load_config(path)
    assert config.kubernetes is not None
    assert config.kubernetes.contexts == ("prod", "staging")
    assert config.grafana is not None
    assert config.grafana.queries[0].expr == "up == 0"


def test_an_invalid_config_file_names_the_file_and_the_field(tmp_path: Path) -> None:
    path = tmp_path / "pollers.toml"
    path.write_text('[sentry]\norganization = "acme"\nprojects = []\n')
    with pytest.raises(ConfigError, match=r"pollers.toml: sentry.projects"):
        load_config(path)
    ini = tmp_path / "pollers.ini"
    ini.write_text("[sentry]\n")
    with pytest.raises(ConfigError, match="must end in"):
        load_config(ini)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
