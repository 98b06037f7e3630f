"""``seismo doctor --config``'s source checks against the fake Sentry, Grafana and Kubernetes APIs."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from producers.checks import CheckResult, check_grafana, check_sentry, run_checks
from producers.checks_platform import check_kubernetes
from producers.config import GrafanaConfig, KubernetesConfig, PollersFile, SentryConfig
from tests.fakes.grafana import FakeGrafana
from tests.fakes.kubernetes import FakeKubernetes, kubeconfig
from tests.fakes.sentry import FakeSentry

SENTRY_ENV = {"SEISMO_SENTRY_TOKEN": "sntrys-test"}
GRAFANA_ENV = {"SEISMO_GRAFANA_TOKEN": "glsa_test"}


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (the port was free a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def sentry(url: str) -> SentryConfig:
    return SentryConfig(base_url=url, organization="acme", projects=("payments", "checkout"))


def test_sentry_passes_when_the_token_reads_the_organization_and_every_project() -> None:
    with FakeSentry() as fake:
        result = asyncio.run(check_sentry(sentry(fake.url), SENTRY_ENV))
        paths = [r.path for r in fake.requests]
    assert result.ok, result.detail
    assert result.name == "sentry"
    assert paths == ["/api/0/organizations/acme/", "/api/0/projects/acme/payments/",
                     "/api/0/projects/acme/payments/issues/", "/api/0/projects/acme/checkout/",
                     "/api/0/projects/acme/checkout/issues/"]


def test_sentry_with_a_rejected_token_names_the_env_var_and_the_scopes() -> None:
    with FakeSentry() as fake:
        result = asyncio.run(check_sentry(sentry(fake.url), {"SEISMO_SENTRY_TOKEN": "expired"}))
    assert not result.ok
    assert "$SEISMO_SENTRY_TOKEN was rejected (401" in result.detail
    assert "org:read, project:read, event:read" in result.detail


def test_sentry_with_a_token_missing_event_read_names_that_scope() -> None:
    with FakeSentry() as fake:
        fake.fail("/api/0/projects/acme/payments/issues/", 403)
        result = asyncio.run(check_sentry(sentry(fake.url), SENTRY_ENV))
    assert not result.ok
    assert "lacks scope event:read (403" in result.detail


def test_sentry_with_an_unknown_project_says_to_fix_the_config() -> None:
    with FakeSentry() as fake:
        fake.projects = {"payments"}
        result = asyncio.run(check_sentry(sentry(fake.url), SENTRY_ENV))
    assert not result.ok
    assert "project acme/checkout not found (404" in result.detail


def test_sentry_without_a_token_says_which_variable_to_set() -> None:
    result = asyncio.run(check_sentry(sentry(closed_port_url()), {}))
    assert not result.ok
    assert result.detail.startswith("no token: set $SEISMO_SENTRY_TOKEN")


def test_sentry_unreachable_says_the_base_url_is_unreachable() -> None:
    url = closed_port_url()
    result = asyncio.run(check_sentry(sentry(url), SENTRY_ENV, timeout_s=2))
    assert not result.ok
    assert f"{url} is unreachable" in result.detail
    assert "check base_url" in result.detail


def test_grafana_passes_with_a_viewer_token_in_the_configured_org() -> None:
    with FakeGrafana() as fake:
        result = asyncio.run(check_grafana(GrafanaConfig(base_url=fake.url), GRAFANA_ENV))
        [search] = fake.calls("/api/search")
    assert result.ok, result.detail
    assert "Grafana 11.1.0" in result.detail
    assert (search.param("limit"), search.headers["x-grafana-org-id"]) == ("1", "1")


def test_grafana_with_a_rejected_token_says_to_add_a_new_one() -> None:
    with FakeGrafana() as fake:
        result = asyncio.run(check_grafana(GrafanaConfig(base_url=fake.url), {"SEISMO_GRAFANA_TOKEN": "x"}))
    assert not result.ok
    assert "$SEISMO_GRAFANA_TOKEN was rejected (401)" in result.detail


def test_grafana_in_the_wrong_org_says_to_grant_viewer_in_that_org() -> None:
    with FakeGrafana() as fake:
        result = asyncio.run(check_grafana(GrafanaConfig(base_url=fake.url, org_id=2), GRAFANA_ENV))
    assert not result.ok
    assert "may not read org 2 (403)" in result.detail
    assert "Viewer role" in result.detail


def test_grafana_unreachable_says_the_base_url_is_unreachable() -> None:
    url = closed_port_url()
    result = asyncio.run(check_grafana(GrafanaConfig(base_url=url), GRAFANA_ENV, timeout_s=2))
    assert not result.ok
    assert f"{url} is unreachable" in result.detail


def kube(path: Path, *contexts: str) -> KubernetesConfig:
    return KubernetesConfig(kubeconfig=path, contexts=contexts, namespaces=("shop",))


def test_kubernetes_gives_one_line_per_context_and_lists_one_pod_in_each(tmp_path: Path) -> None:
    with FakeKubernetes() as prod, FakeKubernetes() as dev:
        path = kubeconfig(tmp_path / "kubeconfig", {"prod": prod.url, "dev": dev.url}, "prod")
        results = check_kubernetes(kube(path, "prod", "dev"))
        [call] = prod.calls("/api/v1/namespaces/shop/pods")
    assert [(r.name, r.ok) for r in results] == [("k8s prod", True), ("k8s dev", True)]
    assert call.param("limit") == "1"
    assert call.headers["authorization"] == "Bearer token-prod"


def test_kubernetes_rbac_403_points_at_the_cluster_role(tmp_path: Path) -> None:
    with FakeKubernetes() as prod:
        prod.fail("/api/v1/namespaces/shop/pods", 403, body={"kind": "Status", "code": 403})
        path = kubeconfig(tmp_path / "kubeconfig", {"prod": prod.url}, "prod")
        [result] = check_kubernetes(kube(path))
    assert (result.name, result.ok) == ("k8s prod", False)
    assert "RBAC forbids listing pods in namespace shop (403)" in result.detail
    assert "ClusterRole from docs/sources.md" in result.detail


def test_kubernetes_401_says_the_context_credentials_were_rejected(tmp_path: Path) -> None:
    with FakeKubernetes() as prod:
        prod.fail("/api/v1/namespaces/shop/pods", 401)
        path = kubeconfig(tmp_path / "kubeconfig", {"prod": prod.url}, "prod")
        [result] = check_kubernetes(kube(path, "prod"))
    assert not result.ok
    assert "rejected the credentials of context prod (401)" in result.detail


def test_an_unreachable_api_server_and_an_unknown_context_each_fail_their_own_line(tmp_path: Path) -> None:
    url = closed_port_url()
    path = kubeconfig(tmp_path / "kubeconfig", {"gone": url}, "gone")
    gone, missing = check_kubernetes(kube(path, "gone", "nope"), timeout_s=2)
    assert (gone.name, gone.ok) == ("k8s gone", False)
    assert f"API server {url} is unreachable" in gone.detail
    assert (missing.name, missing.ok) == ("k8s nope", False)
    assert missing.detail.startswith("cannot load kubeconfig")


def test_run_checks_gives_a_line_per_configured_source_and_never_raises(tmp_path: Path) -> None:
    with FakeSentry() as fake_sentry, FakeGrafana() as fake_grafana:
        config = PollersFile(
            sentry=sentry(fake_sentry.url),
            grafana=GrafanaConfig(base_url=fake_grafana.url),
            kubernetes=kube(tmp_path / "missing-kubeconfig", "prod"),
            cloudwatch={"region": "eu-west-1", "no_such_key": 1},
        )
        results = run_checks(config, {**SENTRY_ENV, **GRAFANA_ENV})
    assert [(r.name, r.ok) for r in results] == [
        ("sentry", True), ("grafana", True), ("k8s prod", False), ("cloudwatch", False)]
    assert "cloudwatch.no_such_key" in results[3].detail
    assert all(isinstance(r, CheckResult) for r in results)
