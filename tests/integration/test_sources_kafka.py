"""The Grafana and Kubernetes pollers and the simulator, publishing to the real Kafka broker.

The pollers run through :func:`producers.poll.run_poller`, the path ``seismo poll`` takes: a
Kafka publisher, cursors restored from the compacted cursor topic, the system clock.  Each test
has its own topic prefix (``seismo_env``); a missing broker fails the tests, never skips them.
"""

from __future__ import annotations

import asyncio
import errno
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from producers.cursors import read_cursors
from producers.exceptions import RecoverableError
from producers.metrics import RecordingMetrics
from producers.poll import SourceName, run_poller
from schemas.codec import codec_for
from schemas.models import DeadLetter, Event, EventKind
from seismo.settings import Settings
from seismo.topics import ensure_topics
from tests.fakes.grafana import FakeGrafana, make_alert, make_annotation, prometheus_frame
from tests.fakes.kubernetes import FakeKubernetes, kubeconfig, make_deployment, make_k8s_event, make_pod
from tests.kafka_utils import Env, bootstrap, free_port, read_topic, wait_for

pytestmark = pytest.mark.kafka

MALFORMED = b'{"truncated": [1, 2'  # what FakeHttpServer.malformed answers
FAST = {"rate_per_s": 50, "burst": 50, "backoff_base_s": 0.05, "backoff_cap_s": 1.0, "max_attempts": 4}


class BackgroundPoller:
    """``run_poller`` on its own event loop in a thread until :meth:`stop` (as SIGTERM does for the CLI)."""

    def __init__(self, settings: Settings, source: SourceName, config: Path,
                 metrics_endpoint: tuple[str, int] | None = None) -> None:
        self.metrics: RecordingMetrics | None = None
        self._endpoint = metrics_endpoint
        self.error: BaseException | None = None
        self._started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, args=(settings, source, config), daemon=True)
        self._thread.start()
        assert self._started.wait(10), "the poller thread did not start"

    def _main(self, settings: Settings, source: SourceName, config: Path) -> None:
        async def main() -> RecordingMetrics:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            self._started.set()
            return await run_poller(settings, source, config, self._stop, metrics_endpoint=self._endpoint)

        try:
            self.metrics = asyncio.run(main())
        except BaseException as exc:  # handed to the test thread by check() and stop()
            self.error = exc
        finally:
            self._started.set()

    def check(self) -> None:
        """Fail when the poller died."""
        if self.error is not None:
            raise AssertionError(f"the poller died: {self.error!r}") from self.error
        assert self._thread.is_alive(), "the poller returned before it was stopped"

    def stop(self, timeout: float = 30) -> RecordingMetrics:
        """Ask the poller to stop between pages; return its metrics once it has."""
        if self._thread.is_alive() and self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the poller did not stop within {timeout:.0f}s"
        if self.error is not None:
            raise AssertionError(f"the poller died: {self.error!r}") from self.error
        assert self.metrics is not None
        return self.metrics


@pytest.fixture
def running() -> Iterator[list[BackgroundPoller]]:
    """Pollers a test starts; any still running at the end are stopped."""
    pollers: list[BackgroundPoller] = []
    yield pollers
    for poller in pollers:
        if poller.error is None:
            poller.stop()


def raw_events(env: Env) -> list[tuple[str, Event]]:
    codec = codec_for("event")
    out = []
    for key, value in read_topic(env.topic("events.raw")):
        assert key is not None and value is not None, "a raw event without key or value"
        out.append((key.decode(), Event.from_avro(codec.decode(value))))
    return out


def dead_letters(env: Env) -> list[DeadLetter]:
    codec = codec_for("dead_letter")
    return [DeadLetter.from_avro(codec.decode(v)) for _, v in read_topic(env.topic("dlq")) if v]


def cursors(env: Env) -> dict[str, Any]:
    """The cursors on the topic now; {} while the broker still elects a new topic's leader."""
    try:
        return read_cursors(bootstrap(), env.topic("cursors"), timeout=10)
    except RecoverableError:
        return {}


def create_topics(env: Env) -> None:
    """Create the env's topics and wait until their leaders answer.

    Right after creation a watermark query can fail with NOT_LEADER_FOR_PARTITION, and
    ``KafkaCursorStore.restore`` does not retry that (reported), so the pollers start after this.
    """
    ensure_topics(env.settings)

    def answers() -> bool:
        try:
            read_cursors(bootstrap(), env.topic("cursors"), timeout=10)
        except RecoverableError:
            return False
        return True

    wait_for(answers, 30, "the new topics' leaders")


def write_config(path: Path, source: str, section: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump({source: {**FAST, **section}}))
    return path


def assert_exactly_once(events: list[tuple[str, Event]], expected_ids: set[str]) -> None:
    ids = [e.id for _, e in events]
    doubled = sorted({i for i in ids if ids.count(i) > 1})
    assert not doubled, f"{len(doubled)} event ids published more than once, e.g. {doubled[:5]}"
    missing, extra = sorted(expected_ids - set(ids)), sorted(set(ids) - expected_ids)
    assert not missing, f"{len(missing)} events never published, e.g. {missing[:5]}"
    assert not extra, f"unexpected events published: {extra[:5]}"
    wrong_keys = [(k, e.id, e.service) for k, e in events if k != e.service]
    assert not wrong_keys, f"records not keyed by their service: {wrong_keys[:5]}"


def test_the_grafana_poller_resumes_mid_pagination_from_its_kafka_cursor_and_dead_letters_bad_json(
    seismo_env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, running: list[BackgroundPoller]
) -> None:
    monkeypatch.setenv("SEISMO_GRAFANA_TOKEN", "glsa_test")
    create_topics(seismo_env)
    now_ms = int(time.time() * 1000)
    services = ("payments", "checkout")
    with FakeGrafana() as fake:
        fake.annotations = [
            make_annotation(
                i,
                now_ms - 3_000_000 + i * 10_000,  # the last 50 minutes, inside the first-poll lookback
                f"note {i}",
                (["deploy"] if i % 10 == 0 else []) + [f"service:{services[i % 2]}"],
            )
            for i in range(1, 251)
        ]
        starts = datetime.fromtimestamp(now_ms // 1000 - 600, UTC).isoformat().replace("+00:00", "Z")
        fake.alerts = [
            make_alert("fp-pay", starts, {"alertname": "ErrorRate", "service": "payments"}, "5xx 12%"),
            make_alert("fp-search", starts, {"alertname": "Latency", "app": "search"}, "p95 2s"),
        ]
        points = [(now_ms - minutes * 60_000, 100.0 + minutes) for minutes in (5, 4, 3)]
        fake.frames["p95_latency"] = [prometheus_frame({"service": "search"}, points)]
        query = {"name": "latency_p95_ms", "datasource_uid": "prom", "kind": "prometheus",
                 "expr": "p95_latency", "unit": "ms"}
        section = {"base_url": fake.url, "dashboards": False, "queries": [query]}
        fake.fail("/api/annotations", 429, headers={"Retry-After": "1"})
        fake.malformed("/api/alertmanager/grafana/api/v2/alerts")

        # first poller: one page per stream per cycle and a long interval, so it stops mid-pagination
        first_cfg = write_config(tmp_path / "first.yaml", "grafana", {
            **section, "max_pages_per_cycle": 1, "interval_s": 3600})
        first = BackgroundPoller(seismo_env.settings, "grafana", first_cfg)
        running.append(first)

        def first_cycle_done() -> bool:
            first.check()
            return "grafana/query:latency_p95_ms" in cursors(seismo_env)

        wait_for(first_cycle_done, 60, "the first poller's cycle to save its query cursor", interval=0.5)
        metrics = first.stop()
        assert metrics.value("seismo_poller_retries_total", source="grafana") == 1
        first_calls = len(fake.calls("/api/annotations"))
        assert first_calls == 2, "the 429 should be retried once, after its Retry-After"
        saved = cursors(seismo_env)["grafana/annotations"]
        assert saved["to"] is not None, f"the first poller was not stopped mid-pagination: {saved}"

        published = raw_events(seismo_env)
        assert sorted(e.id for _, e in published if e.kind != EventKind.METRIC) == sorted(
            f"grafana:annotation:{i}" for i in range(151, 251)
        ), "the first page holds the 100 newest annotations"
        assert len([e for _, e in published if e.kind == EventKind.METRIC]) == 3, (
            "the query stream after the malformed alerts response was still polled"
        )

        # second poller: a fresh process state, cursors restored from the compacted topic
        second_cfg = write_config(tmp_path / "second.yaml", "grafana", {**section, "interval_s": 0.2})
        second = BackgroundPoller(seismo_env.settings, "grafana", second_cfg)
        running.append(second)

        def all_published() -> bool:
            second.check()
            return len(read_topic(seismo_env.topic("events.raw"))) >= 255

        wait_for(all_published, 60, "the second poller to publish every annotation and alert", interval=0.5)
        done_at = len(fake.calls("/api/annotations"))

        def two_more_cycles() -> bool:
            second.check()
            return len(fake.calls("/api/annotations")) >= done_at + 2

        wait_for(two_more_cycles, 30, "two more polling cycles")
        second.stop()
        resumed = fake.calls("/api/annotations")[first_calls]

    assert (resumed.param("from"), resumed.param("to")) == (str(saved["since"]), str(saved["to"])), (
        "the second poller did not resume from the cursor the first one saved"
    )
    events = raw_events(seismo_env)
    expected = {f"grafana:annotation:{i}" for i in range(1, 251)}
    expected |= {f"grafana:alert:fp-pay:{starts}", f"grafana:alert:fp-search:{starts}"}
    expected |= {e.id for _, e in published if e.kind == EventKind.METRIC}
    assert_exactly_once(events, expected)
    assert {e.service for _, e in events} == {"payments", "checkout", "search"}
    assert len([e for _, e in events if e.kind == EventKind.DEPLOY]) == 25
    assert {e.kind for _, e in events} == {EventKind.ANNOTATION, EventKind.DEPLOY, EventKind.ALERT,
                                           EventKind.METRIC}

    [letter] = dead_letters(seismo_env)
    assert letter.component == "poller.grafana"
    assert letter.reason.startswith("grafana/alerts: ") and "not JSON" in letter.reason, letter.reason
    assert letter.payload == MALFORMED


CHECKOUT_POD = "checkout-7d8f9c6b5-xyz12"
PAYMENTS_POD = "payments-5f6d7c8b9-abcde"


def start_on_free_port(settings: Settings, config: Path, tries: int = 5) -> tuple[BackgroundPoller, int]:
    """A grafana poller serving metrics on a port that was free: another process on this machine
    may take a port between ``free_port`` and the bind, so a poller that died on EADDRINUSE is
    started again on another."""
    for _ in range(tries):
        port = free_port()
        poller = BackgroundPoller(settings, "grafana", config, ("127.0.0.1", port))
        deadline = time.monotonic() + 10  # the bind is the first thing run_poller does
        while poller.error is None and time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    return poller, port
            time.sleep(0.05)
        error = poller.error
        if isinstance(error, OSError) and error.errno == errno.EADDRINUSE:
            continue
        return poller, port
    raise AssertionError(f"no free port after {tries} tries")


def test_a_running_poller_serves_its_counters_at_get_metrics(
    seismo_env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, running: list[BackgroundPoller]
) -> None:
    monkeypatch.setenv("SEISMO_GRAFANA_TOKEN", "glsa_test")
    create_topics(seismo_env)
    now_ms = int(time.time() * 1000)
    published = 'seismo_poller_published_total{source="grafana",stream="annotations"} 3'
    with FakeGrafana() as fake:
        fake.annotations = [make_annotation(i, now_ms - i * 60_000, f"note {i}", ["service:payments"])
                            for i in (1, 2, 3)]
        config = write_config(tmp_path / "grafana.yaml", "grafana", {
            "base_url": fake.url, "dashboards": False, "alerts": False, "interval_s": 3600})
        poller, port = start_on_free_port(seismo_env.settings, config)
        running.append(poller)
        url = f"http://127.0.0.1:{port}/metrics"
        scraped: list[httpx.Response] = []

        def counted() -> bool:
            poller.check()
            try:
                scraped.append(httpx.get(url, timeout=2))
            except httpx.TransportError:
                return False  # not listening yet: the poller is still starting
            return published in scraped[-1].text

        wait_for(counted, 60, f"{url} to count the 3 published annotations", interval=0.2)
        metrics = poller.stop()
    assert scraped[-1].headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "# TYPE seismo_poller_lag_seconds gauge" in scraped[-1].text
    assert metrics.summary().startswith("polled 3, published 3, deduped 0")
    with pytest.raises(httpx.TransportError):
        httpx.get(url, timeout=2)


def test_the_kubernetes_poller_resumes_its_watch_logs_and_rollouts_from_kafka_cursors_after_a_restart(
    seismo_env: Env, tmp_path: Path, running: list[BackgroundPoller]
) -> None:
    create_topics(seismo_env)
    payments = {"app.kubernetes.io/name": "payments", "app": "payments"}
    checkout = {"app": "checkout"}
    with FakeKubernetes() as fake:
        fake.pods = [
            make_pod(PAYMENTS_POD, "shop", payments, waiting="CrashLoopBackOff", restarts=4),
            make_pod(CHECKOUT_POD, "shop", checkout),
        ]
        fake.events = [
            make_k8s_event("e1", 10, PAYMENTS_POD, "shop", "BackOff", "Back-off restarting failed container"),
            make_k8s_event("e2", 11, CHECKOUT_POD, "shop", "Unhealthy", "Readiness probe failed"),
            make_k8s_event("e3", 12, "checkout-7d8f9c6b5-other", "shop", "Pulled", "Pulled", "Normal"),
        ]
        log = fake.logs[("shop", CHECKOUT_POD, "checkout")] = [
            f"2024-05-01T11:59:0{i}.5Z GET /cart {200 + i}" for i in range(3)
        ]
        fake.deployments = [
            make_deployment("payments", "shop", payments, 3, "payments:3"),
            make_deployment("checkout", "shop", checkout, 7, "checkout:7"),
        ]
        # a 500 (a 429 with Retry-After is retried inside the kubernetes client's urllib3 already)
        fake.fail("/api/v1/namespaces/shop/pods", 500)
        fake.malformed("/api/v1/namespaces/shop/events")
        path = kubeconfig(tmp_path / "kubeconfig", {"prod": fake.url}, "prod")
        cfg = write_config(tmp_path / "pollers.yaml", "kubernetes", {
            "kubeconfig": str(path), "namespaces": ["shop"], "metrics": False, "interval_s": 0.2,
            "watch_timeout_s": 2})

        first = BackgroundPoller(seismo_env.settings, "kubernetes", cfg)
        running.append(first)

        def phase_one_published() -> bool:
            first.check()
            return cursors(seismo_env).get("kubernetes/events:prod:shop") == {"rv": "12"}

        wait_for(phase_one_published, 60, "the first poller to list the events after the bad JSON", 0.5)
        metrics = first.stop()
        assert metrics.value("seismo_poller_retries_total", source="kubernetes") == 1
        assert metrics.value("seismo_poller_dead_letters_total", source="kubernetes") == 1
        event_calls = len(fake.calls("/api/v1/namespaces/shop/events"))
        before_restart = {e.id for _, e in raw_events(seismo_env)}

        # while no poller runs: new events, log lines, a rollout and another restart
        fake.events += [
            make_k8s_event("e4", 20, PAYMENTS_POD, "shop", "OOMKilling", "Memory cgroup out of memory"),
            make_k8s_event("e5", 21, CHECKOUT_POD, "shop", "Unhealthy", "Liveness probe failed"),
        ]
        log += ["2024-05-01T12:00:01.25Z ERROR cart lookup failed", "2024-05-01T12:00:02Z GET /cart 200"]
        fake.deployments[1] = make_deployment("checkout", "shop", checkout, 8, "checkout:8")
        fake.pods[0]["status"]["containerStatuses"][0]["restartCount"] = 5

        second = BackgroundPoller(seismo_env.settings, "kubernetes", cfg)
        running.append(second)

        def phase_two_published() -> bool:
            second.check()
            return len(read_topic(seismo_env.topic("events.raw"))) >= 13

        wait_for(phase_two_published, 60, "the second poller to publish what changed", interval=0.5)
        done_at = len(fake.calls("/api/v1/namespaces/shop/events"))

        def two_more_cycles() -> bool:
            second.check()
            return len(fake.calls("/api/v1/namespaces/shop/events")) >= done_at + 2

        wait_for(two_more_cycles, 30, "two more polling cycles")
        second.stop()
        resumed = fake.calls("/api/v1/namespaces/shop/events")[event_calls]

    assert (str(resumed.param("watch")).lower(), resumed.param("resourceVersion")) == ("true", "12"), (
        "the second poller relisted instead of watching from the restored resourceVersion"
    )
    events = raw_events(seismo_env)
    logs = {e.id for _, e in events if e.kind == EventKind.LOG}
    pod = f"k8s:prod:pod:shop/{PAYMENTS_POD}/payments:CrashLoopBackOff"
    expected = {f"{pod}:4", f"{pod}:5", "k8s:prod:deploy:shop/checkout:8"}
    expected |= {f"k8s:prod:event:e{i}:1" for i in range(1, 6)}
    assert len(logs) == 5, f"expected the 5 checkout log lines once each, got {sorted(logs)}"
    assert_exactly_once(events, expected | logs)
    assert len(before_restart) == 7 and f"{pod}:4" in before_restart
    assert {e.service for _, e in events} == {"payments", "checkout"}
    by_id = {e.id: e for _, e in events}
    assert by_id["k8s:prod:deploy:shop/checkout:8"].kind == EventKind.DEPLOY
    assert {by_id[i].service for i in logs} == {"checkout"}

    [letter] = dead_letters(seismo_env)
    assert letter.component == "poller.kubernetes"
    assert letter.reason.startswith("kubernetes/events:prod:shop: ") and "not JSON" in letter.reason, (
        letter.reason
    )
    assert letter.payload == MALFORMED


def test_a_simulation_written_by_seismo_simulate_is_ingested_into_kafka_line_for_line(
    seismo_env: Env, tmp_path: Path
) -> None:
    out, truth = tmp_path / "sim.jsonl", tmp_path / "truth.json"
    seismo_env.seismo("simulate", "--services", "5", "--incidents", "2", "--seed", "3",
                      "--duration-minutes", "40", "--out", str(out), "--truth", str(truth))
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines, "the simulator wrote no events"

    result = seismo_env.seismo("ingest", str(out))
    assert f"{len(lines)} published, 0 rejected" in result.stdout, result.stdout

    events = raw_events(seismo_env)
    assert_exactly_once(events, {line["id"] for line in lines})
    assert {e.service for _, e in events} == {line["service"] for line in lines}
    assert dead_letters(seismo_env) == []
    injected = json.loads(truth.read_text())["incidents"]
    published = {e.id for _, e in events}
    for name, incident in injected.items():
        assert set(incident["event_ids"]) <= published, f"{name}: some of its events were not published"
