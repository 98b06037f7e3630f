"""``seismo demo``: the whole pipeline on one machine with a built-in scenario."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
from rich.console import Console

from seismo.settings import Settings


class DemoError(RuntimeError):
    """The demo could not start; the message says what to do."""


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as fh:
        return subprocess.Popen([sys.executable, "-m", "seismo", *args], env=env, stdout=fh,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DemoError(f"the gateway exited with code {proc.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise DemoError(f"the gateway did not answer {url} within {timeout:.0f}s")


def run_demo(base: Settings, console: Console, port: int | None, exit_after: float | None) -> None:
    """Blocks until Ctrl-C (or ``exit_after`` seconds); stops everything it started."""
    from mcp_gateway.materializer import IncidentMaterializer
    from mcp_gateway.store import IncidentStore
    from producers.publisher import KafkaPublisher
    from producers.scenario import demo_events
    from schemas.codec import codec_for
    from seismo.local.kafka import LocalKafka
    from seismo.local.process import LocalServiceError
    from seismo.local.redis import LocalRedis
    from seismo.render import incidents_table
    from seismo.topics import Topics, ensure_topics

    run = uuid.uuid4().hex[:8]
    settings = base.model_copy(update={
        "topic_prefix": base.topic_prefix or f"demo-{run}.",
        "app_id": f"seismo-demo-{run}" if base.app_id == "seismo" else base.app_id,
    })
    started: list[LocalKafka | LocalRedis] = []
    procs: list[subprocess.Popen[bytes]] = []
    try:
        if not settings.kafka_bootstrap:
            kafka = LocalKafka(settings)
            if not kafka.status().reachable:
                with console.status("starting Kafka (first run fetches its jars)…"):
                    kafka.start()
                started.append(kafka)
        state_backend = settings.state_backend
        if not settings.redis_url:
            redis = LocalRedis(settings)
            try:
                if not redis.status().reachable:
                    redis.start()
                    started.append(redis)
            except LocalServiceError as exc:
                console.print(f"[yellow]Redis unavailable; the worker keeps its state in memory:"
                              f"[/yellow] {exc}")
                state_backend = "memory"
        ensure_topics(settings)
        env = {**os.environ, "SEISMO_TOPIC_PREFIX": settings.topic_prefix,
               "SEISMO_APP_ID": settings.app_id, "SEISMO_KAFKA_BOOTSTRAP": settings.bootstrap,
               "SEISMO_STATE_BACKEND": state_backend}
        logs = settings.state_dir / "demo" / run
        port = port or settings.gateway_port
        procs.append(_spawn(["worker"], env, logs / "worker.log"))
        procs.append(_spawn(["gateway", "--port", str(port)], env, logs / "gateway.log"))
        _wait_http(f"http://127.0.0.1:{port}/healthz", procs[1], 60)
        events = demo_events()
        publisher = KafkaPublisher(settings.bootstrap, client_id="seismo-demo")
        codec, raw = codec_for("event"), Topics.from_settings(settings).raw
        for ev in events:
            publisher.publish(raw, ev.service.encode(), codec.encode(ev.to_avro()))
        publisher.flush()
        console.print(f"fed {len(events)} events from kubernetes, sentry, cloudwatch, grafana")
        # One materializer follows the incidents topic while we wait (the gateway runs its own).
        store = IncidentStore()
        follower = IncidentMaterializer(settings.bootstrap, Topics.from_settings(settings).incidents, store)
        follower.start()
        try:
            with console.status("waiting for the worker to correlate…"):
                deadline = time.monotonic() + 120
                found = []
                while time.monotonic() < deadline:
                    if procs[0].poll() is not None:
                        raise DemoError(f"the worker exited; see {logs / 'worker.log'}")
                    found = store.query(limit=100).incidents
                    if len({s for i in found for s in i.services}) >= 2:
                        break
                    time.sleep(1)
        finally:
            follower.stop()
        incidents_table(found, console)
        console.print(f"\nMCP endpoint (streamable HTTP): [bold]http://127.0.0.1:{port}/mcp[/bold]")
        console.print(f"logs: {logs}    topics: {settings.topic_prefix}seismo.*")
        console.print("Press Ctrl-C to stop everything the demo started.")
        _wait(exit_after)
    except KeyboardInterrupt:
        pass
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        for service in started:
            service.stop()
        console.print("demo stopped")


def _wait(exit_after: float | None) -> None:
    deadline = None if exit_after is None else time.monotonic() + exit_after
    while deadline is None or time.monotonic() < deadline:
        time.sleep(0.5)
