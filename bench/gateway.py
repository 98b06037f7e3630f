"""Benchmark the MCP gateway: N concurrent MCP sessions over streamable HTTP.

Starts a real gateway (``seismo gateway``) on its own uuid-named topics of the broker at
``SEISMO_KAFKA_BOOTSTRAP`` (or the local one), with ``--incidents`` incidents and enriched
events published first, the hash embedder (search without a model download), an admin key,
no rate limit, and the no-op tool (``SEISMO_GATEWAY_NOOP_TOOL=1``, benchmarks only).  Each of
``--sessions`` sessions runs ``--rounds`` rounds of list_incidents, get_incident,
search_events and noop (and, with ``--live``, ``k8s_list_pods`` against the fake Kubernetes
API server of the tests, whose request count gives the upstream calls the cache saved).

Prints p50/p99 latency and calls/s per tool, beside the no-op tool on the same server in the
same run, and the p99 ratios the target compares (list/get p99 <= 2x no-op p99).  Removes its
topics and temporary files on exit.

Usage: python bench/gateway.py [--sessions 50] [--rounds 5] [--incidents 200] [--live]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import anyio
import httpx

from mcp_gateway.auth.keys import KeyStore
from mcp_gateway.auth.roles import Role
from mcp_gateway.client import gateway_client
from producers.publisher import KafkaPublisher
from schemas.codec import codec_for
from schemas.models import Event, Incident
from seismo.settings import Settings
from seismo.topics import Topics, ensure_topics

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
SERVICES = [f"svc-{i}" for i in range(12)]


def publish(settings: Settings, incidents: int) -> list[str]:
    topics = Topics.from_settings(settings)
    pub = KafkaPublisher(settings.bootstrap, client_id="bench-gateway")
    ev_codec, inc_codec = codec_for("event"), codec_for("incident")
    ids = []
    for i in range(incidents):
        svc = SERVICES[i % len(SERVICES)]
        events = [Event.model_validate({
            "id": f"ev-{i}-{n}", "source": "sentry", "kind": "error", "severity": "error", "service": svc,
            "timestamp": T0 + timedelta(seconds=i * 10 + n), "template_id": f"T{n % 5}",
            "template": f"request <NUM> failed with code {n % 5}",
            "message": f"request {i * 100 + n} failed with code {n % 5}"}) for n in range(10)]
        for ev in events:
            pub.publish(topics.enriched, svc.encode(), ev_codec.encode(ev.to_avro()))
        inc = Incident.model_validate({
            "id": f"inc-{i:04d}", "revision": 1, "status": "open" if i % 4 else "resolved",
            "title": f"{svc}: request failures", "severity": "error", "opened_at": events[0].timestamp,
            "updated_at": events[-1].timestamp, "services": [svc], "sources": ["sentry"],
            "root_cause_candidates": [{"service": svc, "score": 0.9, "reason": "first anomalous"}],
            "evidence": [{"event_id": e.id, "source": "sentry", "kind": "error", "timestamp": e.timestamp,
                          "service": svc, "severity": "error", "summary": e.message} for e in events],
            "event_count": len(events)})
        pub.publish(topics.incidents, inc.id.encode(), inc_codec.encode(inc.to_avro()))
        ids.append(inc.id)
    pub.flush()
    return ids


def live_config(stack: ExitStack, tmp: Path) -> tuple[Path, Any]:
    from tests.fakes.kubernetes import FakeKubernetes, kubeconfig, make_pod

    fake = stack.enter_context(FakeKubernetes())
    fake.pods = [make_pod(f"web-{i}", "shop", {"app": "web"}) for i in range(5)]
    cfg = tmp / "sources.toml"
    kube = kubeconfig(tmp / "kubeconfig", {"bench": fake.url}, "bench")
    cfg.write_text(f'[kubernetes]\nkubeconfig = "{kube}"\nnamespaces = ["shop"]\n')
    return cfg, fake


async def session(url: str, key: str, ids: list[str], rounds: int, live: bool,
                  out: dict[str, list[float]], errors: dict[str, int]) -> None:
    rng = random.Random()
    plan: list[tuple[str, dict[str, Any]]] = []
    async with gateway_client(url, key) as client:
        for _ in range(rounds):
            plan = [("list_incidents", {"status": "open", "max_items": 20}),
                    ("get_incident", {"id": rng.choice(ids)}),
                    ("search_events", {"query": "request failed", "max_items": 5}),
                    ("noop", {})]
            if live:
                plan.append(("k8s_list_pods", {"namespace": "shop"}))
            rng.shuffle(plan)
            for name, args in plan:
                start = time.perf_counter()
                res = await client.call_tool(name, args)
                out[name].append(time.perf_counter() - start)
                if res.is_error:
                    errors[name] += 1


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--incidents", type=int, default=200)
    ap.add_argument("--live", action="store_true", help="also call k8s_list_pods (fake API server)")
    args = ap.parse_args()

    run = uuid.uuid4().hex[:8]
    base = Settings()
    settings = base.model_copy(update={"topic_prefix": f"bench-gw-{run}.", "app_id": f"bench-gw-{run}"})
    with tempfile.TemporaryDirectory() as tmpdir, ExitStack() as stack:
        tmp = Path(tmpdir)
        ensure_topics(settings)
        ids = publish(settings, args.incidents)
        _, key = KeyStore(tmp / "keys.json").create("bench", Role.ADMIN)
        port = 20000 + random.randrange(20000)
        env = {**os.environ, "SEISMO_KAFKA_BOOTSTRAP": settings.bootstrap,
               "SEISMO_TOPIC_PREFIX": settings.topic_prefix, "SEISMO_APP_ID": settings.app_id,
               "SEISMO_EMBEDDER": "hash", "SEISMO_STATE_BACKEND": "memory", "SEISMO_LOG_LEVEL": "WARNING",
               "SEISMO_GATEWAY_NOOP_TOOL": "1", "SEISMO_GATEWAY_KEYS_FILE": str(tmp / "keys.json"),
               "SEISMO_GATEWAY_AUDIT_FILE": str(tmp / "audit.jsonl"),
               "SEISMO_GATEWAY_RATE_PER_MINUTE": "1000000000", "SEISMO_GATEWAY_RATE_BURST": "1000000"}
        fake = None
        if args.live:
            cfg, fake = live_config(stack, tmp)
            env["SEISMO_GATEWAY_SOURCES_CONFIG"] = str(cfg)
        log = open(tmp / "gateway.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([sys.executable, "-m", "seismo", "gateway", "--port", str(port)],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise SystemExit(f"gateway exited:\n{(tmp / 'gateway.log').read_text()[-3000:]}")
                try:
                    health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).json()
                    if health["caught_up"] and health["incidents"] >= args.incidents and \
                            (health["events"] or {}).get("caught_up"):
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            url = f"http://127.0.0.1:{port}/mcp"
            out: dict[str, list[float]] = defaultdict(list)
            errors: dict[str, int] = defaultdict(int)

            async def all_sessions() -> float:
                start = time.perf_counter()
                async with anyio.create_task_group() as tg:
                    for _ in range(args.sessions):
                        tg.start_soon(session, url, key, ids, args.rounds, args.live, out, errors)
                return time.perf_counter() - start

            wall = anyio.run(all_sessions)
        finally:
            proc.terminate()
            proc.wait(30)
            log.close()
            from confluent_kafka.admin import AdminClient

            admin = AdminClient({"bootstrap.servers": settings.bootstrap, "log_level": 3})
            mine = [t for t in admin.list_topics(timeout=10).topics if t.startswith(settings.topic_prefix)]
            if mine:
                for fut in admin.delete_topics(mine, operation_timeout=30).values():
                    fut.result(30)

    total = sum(len(v) for v in out.values())
    print(f"{args.sessions} sessions x {args.rounds} rounds, {total} calls in {wall:.1f} s "
          f"({total / wall:.0f} calls/s overall), {args.incidents} incidents")
    print(f"{'tool':<16}{'calls':>7}{'errors':>8}{'p50 ms':>9}{'p99 ms':>9}{'calls/s':>9}")
    for name in sorted(out):
        v = out[name]
        p50, p99 = pct(v, 0.5), pct(v, 0.99)
        print(f"{name:<16}{len(v):>7}{errors[name]:>8}{p50:>9.1f}{p99:>9.1f}{len(v) / wall:>9.0f}")
    noop = pct(out["noop"], 0.99)
    for name in ("list_incidents", "get_incident"):
        ratio = pct(out[name], 0.99) / noop
        print(f"p99 {name} / p99 noop = {ratio:.2f}  (target <= 2.0: {'met' if ratio <= 2.0 else 'MISSED'})")
    if fake is not None:
        upstream = len(fake.calls("/api/v1/namespaces/shop/pods"))
        print(f"k8s_list_pods: {len(out['k8s_list_pods'])} calls, {upstream} upstream requests, "
              f"{len(out['k8s_list_pods']) - upstream} saved by the cache")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
