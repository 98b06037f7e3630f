"""Kubernetes poller: the official client against the fake API server through a kubeconfig."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from producers.config import KubernetesConfig, PollersFile
from producers.poll import Wiring, open_poller
from producers.sources.kubernetes_map import pod_problems, problem_event, quantity
from schemas.models import Entity, Event, EventKind, Metric, Severity, Source
from tests.fakes import decoded_dead_letters, decoded_events, memory_wiring
from tests.fakes.kubernetes import FakeKubernetes, kubeconfig, make_deployment, make_k8s_event, make_pod

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
PAYMENTS = {"app.kubernetes.io/name": "payments", "app": "payments"}


def config(path: Path, **streams: object) -> PollersFile:
    section = {
        "kubeconfig": str(path),
        "namespaces": ["shop"],
        "pods": False,
        "events": False,
        "logs": False,
        "metrics": False,
        "deployments": False,
        "watch_timeout_s": 1,  # the fake's watch blocks until this server-side timeout, as a real one does
        **streams,
    }
    return PollersFile(kubernetes=KubernetesConfig.model_validate(section))


async def cycles(cfg: PollersFile, wiring: Wiring, n: int = 1) -> None:
    async with open_poller("kubernetes", cfg, wiring) as poller:
        for _ in range(n):
            await poller.cycle()


def test_a_crashlooping_pod_that_was_oom_killed_becomes_the_exact_event() -> None:
    pod = make_pod(
        "payments-5f6d7c8b9-abcde",
        "shop",
        PAYMENTS,
        waiting="CrashLoopBackOff",
        last_terminated="OOMKilled",
        restarts=5,
    )
    [problem] = pod_problems(pod)
    assert problem_event("prod", pod, problem, "payments", NOW) == Event(
        id="k8s:prod:pod:shop/payments-5f6d7c8b9-abcde/payments:CrashLoopBackOff:5",
        source=Source.KUBERNETES,
        kind=EventKind.EVENT,
        timestamp=NOW,
        service="payments",
        entity=Entity(
            namespace="shop",
            pod="payments-5f6d7c8b9-abcde",
            container="payments",
            node="node-1",
            cluster="prod",
        ),
        severity=Severity.ERROR,
        message="Pod payments-5f6d7c8b9-abcde container payments: CrashLoopBackOff (restarts 5); "
        "back-off 5m0s restarting failed container; last terminated OOMKilled (exit 137)",
        attributes={"reason": "CrashLoopBackOff", "restarts": "5", "phase": "Running"},
    )


def test_resource_quantities_are_read_in_cores_and_bytes() -> None:
    assert quantity("250m") == 0.25
    assert quantity("123456789n") == 0.123456789
    assert quantity("64Mi") == 64 * 2**20


def test_a_problem_pod_is_published_once_per_restart_count_within_the_label_selector(tmp_path: Path) -> None:
    with FakeKubernetes() as fake:
        fake.pods = [
            make_pod("payments-5f6d7c8b9-abcde", "shop", PAYMENTS, waiting="CrashLoopBackOff", restarts=5),
            make_pod("web-1", "shop", {"app": "web", "tier": "edge"}, waiting="ImagePullBackOff"),
        ]
        path = kubeconfig(tmp_path / "kubeconfig", {"prod": fake.url}, "prod")
        wiring, publisher, cursors, _, _ = memory_wiring()
        cfg = config(path, pods=True, label_selector="app.kubernetes.io/name=payments")
        asyncio.run(cycles(cfg, wiring, 2))
        fake.pods[0]["status"]["containerStatuses"][0]["restartCount"] = 6
        asyncio.run(cycles(cfg, wiring))
        [call, *_] = fake.calls("/api/v1/namespaces/shop/pods")
    assert call.headers["authorization"] == "Bearer token-prod"
    assert call.param("labelSelector") == "app.kubernetes.io/name=payments"
    assert [(e.service, e.attributes["restarts"]) for e in decoded_events(publisher)] == [
        ("payments", "5"),
        ("payments", "6"),
    ]
    assert cursors.load("kubernetes/pods:prod:shop") == {
        "seen": {"shop/payments-5f6d7c8b9-abcde/payments": "CrashLoopBackOff:6"}
    }


def test_events_are_listed_then_watched_from_the_cursor_and_relisted_after_410_gone(tmp_path: Path) -> None:
    with FakeKubernetes() as fake:
        fake.events = [make_k8s_event("e1", 10, "payments-5f6d7c8b9-abcde", "shop", "BackOff", "Back-off")]
        path = kubeconfig(tmp_path / "kubeconfig", {"prod": fake.url}, "prod")
        wiring, publisher, cursors, _, metrics = memory_wiring()

        async def run() -> None:
            async with open_poller("kubernetes", config(path, events=True), wiring) as poller:
                await poller.cycle()
                assert cursors.load("kubernetes/events:prod:shop") == {"rv": "10"}
                fake.events.append(
                    make_k8s_event("e2", 11, "payments-5f6d7c8b9-abcde", "shop", "OOMKilling", "o")
                )
                await poller.cycle()
                assert fake.calls("/api/v1/namespaces/shop/events")[-1].param("resourceVersion") == "10"
                assert cursors.load("kubernetes/events:prod:shop") == {"rv": "11"}
                fake.oldest_rv = 50
                fake.events.append(make_k8s_event("e3", 60, "web-1", "shop", "Unhealthy", "probe failed"))
                await poller.cycle()

        asyncio.run(run())
    assert cursors.load("kubernetes/events:prod:shop") == {"rv": "60"}
    events = decoded_events(publisher)
    assert [e.attributes["reason"] for e in events] == ["BackOff", "OOMKilling", "Unhealthy"]
    assert metrics.value("seismo_poller_deduped_total") == 2
    assert events[0].service == "payments"
    assert events[0].message == "Pod payments-5f6d7c8b9-abcde: BackOff: Back-off"


def test_a_malformed_watch_line_is_dead_lettered_and_the_next_cycle_goes_on(tmp_path: Path) -> None:
    with FakeKubernetes() as fake:
        fake.events = [make_k8s_event("e1", 10, "api-1", "shop", "BackOff", "x")]
        path = kubeconfig(tmp_path / "kubeconfig", {"prod": fake.url}, "prod")
        wiring, publisher, _cursors, _, _ = memory_wiring()
        cfg = config(path, events=True)
        asyncio.run(cycles(cfg, wiring))
        fake.watch_lines = ["{not json"]
        asyncio.run(cycles(cfg, wiring))
        fake.watch_lines = []
        fake.events.append(make_k8s_event("e2", 11, "api-1", "shop", "Killing", "y"))
        asyncio.run(cycles(cfg, wiring))
    assert [d.error_type for d in decoded_dead_letters(publisher)] == ["invalid_json"]
    assert [e.attributes["reason"] for e in decoded_events(publisher)] == ["BackOff", "Killing"]


def test_container_logs_are_read_after_the_cursor_with_a_line_limit(tmp_path: Path) -> None:
    with FakeKubernetes() as fake:
        fake.pods = [make_pod("payments-5f6d7c8b9-abcde", "shop", PAYMENTS)]
        key = ("shop", "payments-5f6d7c8b9-abcde", "payments")
        fake.logs[key] = [f"2024-05-01T11:59:0{i}.5Z GET /charge 200" for i in range(3)]
        path = kubeconfig(tmp_path / "kubeconfig", {"prod": fake.url}, "prod")
        wiring, publisher, cursors, clock, _ = memory_wiring()
        fake.now = clock.now
        cfg = config(path, logs=True, log_tail_lines=2)
        asyncio.run(cycles(cfg, wiring))
        fake.logs[key].append("2024-05-01T11:59:09.123456789Z ERROR charge failed")
        asyncio.run(cycles(cfg, wiring))
        calls = fake.calls("/api/v1/namespaces/shop/pods/payments-5f6d7c8b9-abcde/log")
    assert (calls[0].param("tailLines"), str(calls[0].param("timestamps")).lower()) == ("2", "true")
    assert calls[1].param("sinceSeconds") is not None
    assert [(e.message, e.severity) for e in decoded_events(publisher)] == [
        ("GET /charge 200", Severity.INFO),
        ("GET /charge 200", Severity.INFO),
        ("ERROR charge failed", Severity.ERROR),
    ]
    assert cursors.load("kubernetes/logs:prod:shop") == {
        "since": {"shop/payments-5f6d7c8b9-abcde/payments": "2024-05-01T11:59:09.123456789Z"}
    }


def test_pod_metrics_are_published_when_served_and_switched_off_when_not(tmp_path: Path) -> None:
    usage = {
        "metadata": {"name": "payments-1", "namespace": "shop", "labels": PAYMENTS},
        "timestamp": "2024-05-01T11:59:30Z",
        "window": "30s",
        "containers": [{"name": "payments", "usage": {"cpu": "250m", "memory": "64Mi"}}],
    }
    with FakeKubernetes() as fake, FakeKubernetes() as bare:
        fake.pod_metrics = [usage]
        path = kubeconfig(tmp_path / "kubeconfig", {"prod": fake.url, "dev": bare.url}, "prod")
        wiring, publisher, _, _, _ = memory_wiring()
        cfg = PollersFile(
            kubernetes=KubernetesConfig(
                kubeconfig=path,
                contexts=("prod", "dev"),
                namespaces=("shop",),
                pods=False,
                events=False,
                logs=False,
                deployments=False,
            )
        )
        asyncio.run(cycles(cfg, wiring, 2))
        assert len(bare.calls("/apis/metrics.k8s.io")) == 1
    assert [(e.metric, e.entity.cluster, e.service) for e in decoded_events(publisher)] == [
        (Metric(name="cpu_cores", value=0.25, unit="cores"), "prod", "payments"),
        (Metric(name="memory_bytes", value=64 * 2**20, unit="bytes"), "prod", "payments"),
    ]


def test_a_new_deployment_revision_becomes_a_deploy_event(tmp_path: Path) -> None:
    with FakeKubernetes() as fake:
        fake.deployments = [make_deployment("payments", "shop", PAYMENTS, 6, "registry/payments:2.4.0")]
        path = kubeconfig(tmp_path / "kubeconfig", {"prod": fake.url}, "prod")
        wiring, publisher, _, _, _ = memory_wiring()
        cfg = config(path, deployments=True)
        asyncio.run(cycles(cfg, wiring))
        fake.deployments = [make_deployment("payments", "shop", PAYMENTS, 7, "registry/payments:2.4.1")]
        asyncio.run(cycles(cfg, wiring, 2))
    [event] = decoded_events(publisher)
    assert (event.kind, event.service, event.entity.release, event.id) == (
        EventKind.DEPLOY,
        "payments",
        "registry/payments:2.4.1",
        "k8s:prod:deploy:shop/payments:7",
    )


def test_5xx_from_the_api_server_is_retried_with_backoff(tmp_path: Path) -> None:
    with FakeKubernetes() as fake:
        fake.pods = [make_pod("web-1", "shop", {"app": "web"}, waiting="ImagePullBackOff")]
        fake.fail("/api/v1/namespaces/shop/pods", 503, times=2)
        path = kubeconfig(tmp_path / "kubeconfig", {"prod": fake.url}, "prod")
        wiring, publisher, _, clock, metrics = memory_wiring()
        asyncio.run(cycles(config(path, pods=True), wiring))
    assert metrics.value("seismo_poller_retries_total", source="kubernetes") == 2
    assert len([s for s in clock.sleeps if s >= 0.25]) == 2
    assert [e.severity for e in decoded_events(publisher)] == [Severity.WARNING]


def test_a_restarted_poller_does_not_publish_the_same_pod_metrics_sample_again(tmp_path: Path) -> None:
    sample = {
        "metadata": {"name": "payments-1", "namespace": "shop", "labels": PAYMENTS},
        "timestamp": "2024-05-01T11:59:30Z",
        "window": "30s",
        "containers": [{"name": "payments", "usage": {"cpu": "250m", "memory": "64Mi"}}],
    }
    with FakeKubernetes() as fake:
        fake.pod_metrics = [sample]
        path = kubeconfig(tmp_path / "kubeconfig", {"prod": fake.url}, "prod")
        cfg = config(path, metrics=True)
        first, before, cursors, _, _ = memory_wiring()
        asyncio.run(cycles(cfg, first))
        # A new process: fresh publisher and dedup window, the same durable cursors.
        second, after, _, _, _ = memory_wiring()
        second = replace(second, cursors=cursors)
        asyncio.run(cycles(cfg, second))
        assert decoded_events(after) == []
        fake.pod_metrics = [{**sample, "timestamp": "2024-05-01T12:00:00Z"}]
        asyncio.run(cycles(cfg, second, 2))
    ids = [e.id for e in decoded_events(before) + decoded_events(after)]
    assert len(ids) == len(set(ids)) == 4
    assert cursors.load("kubernetes/metrics:prod:shop") == {
        "seen": {"shop/payments-1": "2024-05-01T12:00:00Z"}
    }
