"""Kubernetes poller against the API server's real failure shapes, through the official client.

Each failure is one the fake answers with the ``Status`` object a real cluster sends
(tests/fakes/kubernetes.py): no single pod stops the poller, lists are paged, watches block.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from producers.config import KubernetesConfig, PollersFile
from producers.poll import Wiring, open_poller
from tests.fakes import decoded_dead_letters, decoded_events, memory_wiring
from tests.fakes.kubernetes import FakeKubernetes, kubeconfig, make_k8s_event, make_pod

PAYMENTS = {"app.kubernetes.io/name": "payments", "app": "payments"}
CHECKOUT = {"app": "checkout"}


def config(path: Path, **keys: object) -> PollersFile:
    section = {"kubeconfig": str(path), "namespaces": ["shop"], "pods": False, "events": False,
               "logs": False, "metrics": False, "deployments": False, "watch_timeout_s": 1, **keys}
    return PollersFile(kubernetes=KubernetesConfig.model_validate(section))


async def cycles(cfg: PollersFile, wiring: Wiring, n: int = 1) -> None:
    async with open_poller("kubernetes", cfg, wiring) as poller:
        for _ in range(n):
            await poller.cycle()


def kc(tmp_path: Path, fake: FakeKubernetes) -> Path:
    return kubeconfig(tmp_path / "kubeconfig", {"prod": fake.url}, "prod")


def log_lines(*texts: str) -> list[str]:
    return [f"2024-05-01T11:59:0{i}.5Z {text}" for i, text in enumerate(texts)]


def test_a_pod_deleted_between_list_and_log_read_is_skipped_and_the_other_pods_logs_are_read(
    tmp_path: Path,
) -> None:
    with FakeKubernetes() as fake:
        fake.pods = [make_pod("payments-1", "shop", PAYMENTS), make_pod("checkout-1", "shop", CHECKOUT)]
        fake.logs[("shop", "payments-1", "payments")] = log_lines("GET /charge 200")
        fake.logs[("shop", "checkout-1", "checkout")] = log_lines("GET /cart 200")
        fake.deleted = {"shop/payments-1"}  # listed, then gone: the log read answers 404 NotFound
        wiring, publisher, cursors, clock, metrics = memory_wiring()
        fake.now = clock.now
        asyncio.run(cycles(config(kc(tmp_path, fake), logs=True), wiring))
    assert [e.message for e in decoded_events(publisher)] == ["GET /cart 200"]
    assert decoded_dead_letters(publisher) == []
    assert metrics.value("seismo_poller_object_errors_total", reason="gone") == 1
    assert cursors.load("kubernetes/logs:prod:shop") == {
        "since": {"shop/checkout-1/checkout": "2024-05-01T11:59:00.5Z"}}


def test_a_container_waiting_to_start_is_retried_then_parked_and_read_after_its_parking_ends(
    tmp_path: Path,
) -> None:
    with FakeKubernetes() as fake:
        fake.pods = [make_pod("payments-1", "shop", PAYMENTS, waiting="ContainerCreating"),
                     make_pod("checkout-1", "shop", CHECKOUT)]
        fake.logs[("shop", "payments-1", "payments")] = log_lines("started", "GET /charge 200")
        fake.logs[("shop", "checkout-1", "checkout")] = log_lines("GET /cart 200")
        wiring, publisher, cursors, clock, metrics = memory_wiring()
        fake.now = clock.now
        path = kc(tmp_path, fake)
        cfg = config(path, logs=True, object_attempts=2, park_s=600)

        async def run() -> None:
            async with open_poller("kubernetes", cfg, wiring) as poller:
                await poller.cycle()  # 400 BadRequest: attempt 1 of 2, retried next cycle
                assert decoded_dead_letters(publisher) == []
                await poller.cycle()  # attempt 2 of 2: parked and reported
                await poller.cycle()  # parked: not asked at all
                assert len(fake.calls("/api/v1/namespaces/shop/pods/payments-1/log")) == 2
                fake.pods[0] = make_pod("payments-1", "shop", PAYMENTS)  # the container started
                clock.advance(600)
                await poller.cycle()

        asyncio.run(run())
    [letter] = decoded_dead_letters(publisher)
    assert letter.error_type == "object_parked"
    assert "shop/payments-1/payments parked" in letter.reason
    assert 'is waiting to start: ContainerCreating' in letter.reason
    assert metrics.value("seismo_poller_object_errors_total", reason="rejected") == 2
    assert metrics.value("seismo_poller_parked_total") == 1
    assert [e.message for e in decoded_events(publisher)] == ["GET /cart 200", "started", "GET /charge 200"]
    assert set(cursors.load("kubernetes/logs:prod:shop")["since"]) == {  # type: ignore[index]
        "shop/payments-1/payments", "shop/checkout-1/checkout"}


def test_a_pod_whose_logs_are_forbidden_is_parked_at_once_with_the_api_servers_message(
    tmp_path: Path,
) -> None:
    with FakeKubernetes() as fake:
        fake.pods = [make_pod("payments-1", "shop", PAYMENTS), make_pod("checkout-1", "shop", CHECKOUT)]
        fake.logs[("shop", "checkout-1", "checkout")] = log_lines("GET /cart 200")
        fake.forbidden_logs = {"shop/payments-1"}
        wiring, publisher, _, clock, metrics = memory_wiring()
        fake.now = clock.now
        cfg = config(kc(tmp_path, fake), logs=True)
        asyncio.run(cycles(cfg, wiring, 2))
        asked = len(fake.calls("/api/v1/namespaces/shop/pods/payments-1/log"))
    [letter] = decoded_dead_letters(publisher)
    assert 'cannot get resource "pods/log"' in letter.reason and "(denied)" in letter.reason
    assert asked == 1
    assert metrics.value("seismo_poller_parked_total", stream="logs:prod:shop") == 1
    assert [e.message for e in decoded_events(publisher)] == ["GET /cart 200"]


@pytest.mark.parametrize(("selector", "expected"), [
    ("app in (payments,checkout),!canary", {"payments-1", "checkout-1"}),
    ("app notin (payments)", {"checkout-1", "web-1"}),
    ("canary", {"web-1"}),
    ("app!=web,tier", {"checkout-1"}),
])
def test_set_based_label_selectors_select_only_the_matching_pods(
    tmp_path: Path, selector: str, expected: set[str]
) -> None:
    with FakeKubernetes() as fake:
        fake.pods = [
            make_pod("payments-1", "shop", PAYMENTS, waiting="CrashLoopBackOff"),
            make_pod("checkout-1", "shop", {"app": "checkout", "tier": "edge"}, waiting="CrashLoopBackOff"),
            make_pod("web-1", "shop", {"app": "web", "canary": "true", "tier": "edge"},
                     waiting="CrashLoopBackOff"),
        ]
        wiring, publisher, _, _, _ = memory_wiring()
        cfg = config(kc(tmp_path, fake), pods=True, label_selector=selector)
        asyncio.run(cycles(cfg, wiring))
    assert {e.entity.pod for e in decoded_events(publisher)} == expected


def test_pods_are_listed_in_pages_and_relisted_when_the_continue_token_expires(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("producers.sources.kubernetes_api.LIST_PAGE", 2)
    with FakeKubernetes() as fake:
        fake.pods = [make_pod(f"payments-{i}", "shop", PAYMENTS, waiting="CrashLoopBackOff")
                     for i in range(5)]
        fake.expire_continue = 1
        wiring, publisher, _, _, _ = memory_wiring()
        asyncio.run(cycles(config(kc(tmp_path, fake), pods=True), wiring))
        calls = fake.calls("/api/v1/namespaces/shop/pods")
    assert [(c.param("limit"), c.param("continue") is not None) for c in calls] == [
        ("2", False), ("2", True),  # the second page's token had expired: 410 Expired
        ("2", False), ("2", True), ("2", True),
    ]
    pods = sorted(e.entity.pod or "" for e in decoded_events(publisher))
    assert pods == [f"payments-{i}" for i in range(5)]


def test_a_watch_blocks_until_its_timeout_and_its_bookmark_moves_the_cursor_without_an_event(
    tmp_path: Path,
) -> None:
    with FakeKubernetes() as fake:
        fake.events = [make_k8s_event("e1", 10, "payments-1", "shop", "BackOff", "Back-off"),
                       make_k8s_event("e9", 40, "api-1", "other", "Killing", "elsewhere")]
        wiring, publisher, cursors, _, _ = memory_wiring()
        cursors.save("kubernetes/events:prod:shop", {"rv": "10"})
        started = time.monotonic()
        asyncio.run(cycles(config(kc(tmp_path, fake), events=True), wiring))
        elapsed = time.monotonic() - started
        [watch] = fake.calls("/api/v1/namespaces/shop/events")
    assert (watch.param("timeoutSeconds"), str(watch.param("allowWatchBookmarks")).lower()) == ("1", "true")
    assert elapsed >= 1.0, "the watch returned before its server-side timeout"
    assert decoded_events(publisher) == []
    assert cursors.load("kubernetes/events:prod:shop") == {"rv": "40"}
