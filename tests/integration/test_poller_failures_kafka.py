"""Per-object failures on the production path: ``run_poller`` with the Kafka publisher and cursor topic.

Pods that vanish or whose logs are forbidden must not stop ``seismo poll kubernetes``: the
good pod's lines reach the raw topic, the forbidden one is reported once on the DLQ topic,
and the cursor on the compacted topic holds only what was read.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.fakes.kubernetes import FakeKubernetes, kubeconfig, make_pod
from tests.integration.test_sources_kafka import (
    BackgroundPoller,
    create_topics,
    cursors,
    dead_letters,
    raw_events,
    running,
    write_config,
)
from tests.kafka_utils import Env, wait_for

pytestmark = pytest.mark.kafka
__all__ = ["running"]  # the fixture, shared with test_sources_kafka


def test_vanishing_and_forbidden_pods_do_not_stop_the_kubernetes_poller_on_the_real_broker(
    seismo_env: Env, tmp_path: Path, running: list[BackgroundPoller]
) -> None:
    create_topics(seismo_env)
    stamp = (datetime.now(UTC) - timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%S.5Z")
    with FakeKubernetes() as fake:
        fake.pods = [make_pod("payments-1", "shop", {"app": "payments"}),
                     make_pod("checkout-1", "shop", {"app": "checkout"}),
                     make_pod("web-1", "shop", {"app": "web"})]
        fake.logs[("shop", "checkout-1", "checkout")] = [f"{stamp} GET /cart 200"]
        fake.deleted = {"shop/payments-1"}
        fake.forbidden_logs = {"shop/web-1"}
        path = kubeconfig(tmp_path / "kubeconfig", {"prod": fake.url}, "prod")
        cfg = write_config(tmp_path / "pollers.yaml", "kubernetes", {
            "kubeconfig": str(path), "namespaces": ["shop"], "pods": False, "events": False,
            "metrics": False, "deployments": False, "logs": True, "interval_s": 0.1})
        poller = BackgroundPoller(seismo_env.settings, "kubernetes", cfg)
        running.append(poller)

        def three_cycles() -> bool:
            poller.check()
            return len(fake.calls("/api/v1/namespaces/shop/pods/checkout-1/log")) >= 3

        wait_for(three_cycles, 60, "three polling cycles past the failing pods", 0.2)
        metrics = poller.stop()
        forbidden_reads = len(fake.calls("/api/v1/namespaces/shop/pods/web-1/log"))

    assert [e.message for _, e in raw_events(seismo_env)] == ["GET /cart 200"]
    [letter] = dead_letters(seismo_env)
    assert letter.error_type == "object_parked" and "shop/web-1/web parked" in letter.reason
    assert forbidden_reads == 1, "a parked pod was asked again before its parking ended"
    assert metrics.value("seismo_poller_object_errors_total", reason="gone") >= 3
    assert cursors(seismo_env)["kubernetes/logs:prod:shop"] == {
        "since": {"shop/checkout-1/checkout": stamp}}
