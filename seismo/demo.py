"""``seismo demo``: the whole pipeline on one machine with a built-in scenario."""

from __future__ import annotations

import os
import re
import shutil
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


def _last_error(log: Path) -> str:
    """The last ``error:`` line of a child's log (its one-line cause), or its last line."""
    try:
        lines = [ln.strip() for ln in log.read_text("utf-8", errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log"
    errors = [ln for ln in lines if ln.startswith("error:")]
    return (errors or lines or ["empty log"])[-1]


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DemoError(f"the gateway exited with code {proc.returncode}: {_last_error(log)} "
                            f"(log {log})")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise DemoError(f"the gateway did not answer {url} within {timeout:.0f}s")


def run_demo(base: Settings, console: Console, port: int | None, exit_after: float | None,
             clean_up: bool = True) -> None:
    """Blocks until Ctrl-C (or ``exit_after`` seconds); stops everything it started.

    With ``clean_up`` it also deletes what the run made: its topics, its Redis keys and,
    unless the run failed, its log folder.
    """
    from mcp_gateway.keys_cli import demo_key
    from mcp_gateway.materializer import IncidentMaterializer
    from mcp_gateway.store import IncidentStore
    from producers.publisher import KafkaPublisher
    from producers.scenario import demo_events
    from schemas.codec import codec_for
    from seismo.local.kafka import LocalKafka
    from seismo.local.process import LocalServiceError
    from seismo.local.redis import LocalRedis
    from seismo.logs import kafka_logging
    from seismo.render import incidents_table
    from seismo.topics import Topics, ensure_topics

    run = uuid.uuid4().hex[:8]
    settings = base.model_copy(update={
        "topic_prefix": base.topic_prefix or f"demo-{run}.",
        "app_id": f"seismo-demo-{run}" if base.app_id == "seismo" else base.app_id,
        "namespace": f"seismo-demo-{run}" if base.namespace == "seismo" else base.namespace,
    })
    started: list[LocalKafka | LocalRedis] = []
    succeeded = False
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
               "SEISMO_APP_ID": settings.app_id, "SEISMO_NAMESPACE": settings.namespace,
               "SEISMO_KAFKA_BOOTSTRAP": settings.bootstrap,
               "SEISMO_STATE_BACKEND": state_backend}
        logs = settings.state_dir / "demo" / run
        port = port or settings.gateway_port
        procs.append(_spawn(["worker"], env, logs / "worker.log"))
        procs.append(_spawn(["gateway", "--port", str(port)], env, logs / "gateway.log"))
        _wait_http(f"http://127.0.0.1:{port}/healthz", procs[1], 60, logs / "gateway.log")
        events = demo_events()
        publisher = KafkaPublisher(settings.bootstrap, client_id="seismo-demo", **kafka_logging())
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
                        raise DemoError(f"the worker exited with code {procs[0].returncode}: "
                                        f"{_last_error(logs / 'worker.log')} (log {logs / 'worker.log'})")
                    found = store.query(limit=100).incidents
                    if len({s for i in found for s in i.services}) >= 2:
                        break
                    time.sleep(1)
        finally:
            follower.stop()
        incidents_table(found, console)
        console.print(f"\nMCP endpoint (streamable HTTP): [bold]http://127.0.0.1:{port}/mcp[/bold]")
        console.print(f"API key (admin, send as `Authorization: Bearer KEY`): {demo_key(settings)}")
        console.print(f"logs: {logs}    topics: {settings.topic_prefix}seismo.*")
        console.print("Press Ctrl-C to stop everything the demo started"
                      + (" and remove its topics, state and logs." if clean_up else "."))
        _wait(exit_after)
        succeeded = True
    except KeyboardInterrupt:
        succeeded = True
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if clean_up and settings.topic_prefix.startswith("demo-"):
            removed = remove_demo_leftovers(settings, re.escape(f"demo-{run}."), f"seismo-demo-{run}",
                                            logs if succeeded else None)
            console.print(f"removed {removed}" + ("" if succeeded else f"; logs kept in {logs}"))
        for service in started:
            service.stop()
        console.print("demo stopped")


def remove_demo_leftovers(settings: Settings, topic_prefix: str, redis_marker: str,
                          logs: Path | None) -> str:
    """Delete topics matching ``topic_prefix``, consumer groups and Redis keys containing
    ``redis_marker`` (the run's namespace), and ``logs``.

    ``topic_prefix`` is a regular expression matched at the start of each topic name.

    Returns what was removed, as a phrase (``6 topics, 3 consumer groups, 1 Redis key, the log folder``).
    Best effort: a broker or Redis that does not answer leaves its part in place and says so.
    """
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    from seismo.cliutil import plural
    from seismo.logs import kafka_logging

    parts: list[str] = []
    admin = AdminClient(kafka_logging({"bootstrap.servers": settings.bootstrap}))
    try:
        pattern = re.compile(topic_prefix)
        names = [t for t in admin.list_topics(timeout=10).topics if pattern.match(t)]
        for future in admin.delete_topics(names, operation_timeout=30).values() if names else ():
            future.result(30)
        parts.append(plural(len(names), "topic"))
        listed = admin.list_consumer_groups(request_timeout=10).result(15)
        groups = [g.group_id for g in listed.valid if redis_marker in g.group_id]
        for future in admin.delete_consumer_groups(groups, request_timeout=15).values() if groups else ():
            future.result(15)
        parts.append(plural(len(groups), "consumer group"))
    except KafkaException as exc:
        parts.append(f"no topics or groups (Kafka: {exc})")
    parts.append(_remove_redis_keys(settings.redis, redis_marker))
    if logs is not None and logs.is_dir():
        shutil.rmtree(logs, ignore_errors=True)
        parts.append(f"the log folder {logs}")
    return ", ".join(parts)


def _remove_redis_keys(url: str, marker: str) -> str:
    import redis

    from seismo.cliutil import plural

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=5.0)
        try:
            keys = list(client.scan_iter(match=f"*{marker}*", count=500))
            if keys:
                client.delete(*keys)
        finally:
            client.close()
    except redis.RedisError as exc:
        return f"no Redis keys (Redis: {exc})"
    return plural(len(keys), "Redis key")


def clean_all(settings: Settings) -> str:
    """``seismo demo --clean``: remove what earlier demo runs left (topics, Redis keys, logs)."""
    return remove_demo_leftovers(settings, r"demo-[0-9a-f]{8}\.seismo\.", "seismo-demo-",
                                 settings.state_dir / "demo")


def _wait(exit_after: float | None) -> None:
    deadline = None if exit_after is None else time.monotonic() + exit_after
    while deadline is None or time.monotonic() < deadline:
        time.sleep(0.5)
