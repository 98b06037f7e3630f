"""The deployment files (Dockerfile, docker-compose.yml, k8s/) checked without Docker or a cluster.

Every file is parsed and cross-checked against the others and against the code: the Kafka address the
clients use is one the broker advertises, every ``SEISMO_*`` variable is a real :class:`Settings` field,
Services select real pods on real ports, probes hit ``/healthz`` where the gateway serves it.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from producers.config import GrafanaConfig, PollersFile, SentryConfig
from seismo.cli import app as cli_app
from seismo.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCS = ROOT / "docs" / "deploy.md"

SEISMO_IMAGE = "seismo"
KAFKA_IMAGE = "apache/kafka:4.1.1"
REDIS_IMAGE = "redis:7-alpine"
# Read by the pollers (producers.config token_env), not by Settings; documented in docs/deploy.md.
SOURCE_TOKEN_VARS = {
    str(SentryConfig.model_fields["token_env"].default),
    str(GrafanaConfig.model_fields["token_env"].default),
}
SETTINGS_VARS = {f"SEISMO_{name.upper()}" for name in Settings.model_fields}
SECRET_NAME = "seismo-source-tokens"
REDIS_SECRET = "seismo-redis"
SECRET_NAMES = {SECRET_NAME, REDIS_SECRET}


# ---------------------------------------------------------------------------------------------- loading


def _load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text("utf-8")) if doc is not None]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text("utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(compose["services"])


@pytest.fixture(scope="module")
def k8s_files() -> dict[str, list[dict[str, Any]]]:
    return {p.name: _load_all(p) for p in sorted(K8S.glob("*.yaml"))}


@pytest.fixture(scope="module")
def k8s_docs(k8s_files: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [doc for name, docs in k8s_files.items() if name != "kustomization.yaml" for doc in docs]


@pytest.fixture(scope="module")
def workloads(k8s_docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in k8s_docs if d["kind"] in ("Deployment", "StatefulSet")}


@pytest.fixture(scope="module")
def k8s_services(k8s_docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in k8s_docs if d["kind"] == "Service"}


def _pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return dict(workload["spec"]["template"]["spec"])


def _containers(workload: dict[str, Any], *, init: bool = True) -> list[dict[str, Any]]:
    spec = _pod_spec(workload)
    return [*(spec.get("initContainers") or [] if init else []), *spec["containers"]]


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env") or []}


def _env_value(container: dict[str, Any], name: str) -> str:
    entry = _env(container)[name]
    assert "value" in entry, f"{container['name']}: {name} has no literal value"
    return str(entry["value"])


def _is_seismo(image: str) -> bool:
    return image.split(":")[0].rsplit("/", 1)[-1] == SEISMO_IMAGE


def _seismo_containers(workloads: dict[str, dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, w in workloads.items():
        for c in _containers(w):
            if _is_seismo(c["image"]):
                yield name, c


def _compose_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _listeners(spec: str) -> dict[str, tuple[str, int]]:
    """``NAME://host:port,...`` -> {NAME: (host, port)}; an empty host stays empty."""
    out: dict[str, tuple[str, int]] = {}
    for item in spec.split(","):
        m = re.fullmatch(r"([A-Z_]+)://([^:]*):(\d+)", item.strip())
        assert m, f"not a listener: {item!r}"
        out[m[1]] = (m[2], int(m[3]))
    return out


def _voters(spec: str) -> list[tuple[int, str, int]]:
    out = []
    for item in spec.split(","):
        m = re.fullmatch(r"(\d+)@([^:]+):(\d+)", item.strip())
        assert m, f"not a quorum voter: {item!r}"
        out.append((int(m[1]), m[2], int(m[3])))
    return out


def _kafka_config_is_consistent(env: dict[str, str]) -> dict[str, tuple[str, int]]:
    """Check one KRaft environment; return the advertised listeners."""
    listeners = _listeners(env["KAFKA_LISTENERS"])
    advertised = _listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    controllers = env["KAFKA_CONTROLLER_LISTENER_NAMES"].split(",")
    assert set(listeners) <= set(protocols), "every listener needs a security protocol"
    assert set(controllers) <= set(listeners)
    assert set(advertised) <= set(listeners) - set(controllers), "advertise client listeners only"
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in advertised
    for name, (_, port) in advertised.items():
        assert listeners[name][1] == port, f"{name} advertised on a port it does not bind"
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    for node_id, _, port in _voters(env["KAFKA_CONTROLLER_QUORUM_VOTERS"]):
        assert node_id == int(env["KAFKA_NODE_ID"])
        assert port == listeners[controllers[0]][1]
    for key in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
                "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"):
        assert env[key] == "1", f"{key} must be 1 on a single node"
    cluster_id = env["CLUSTER_ID"]
    assert len(cluster_id) == 22
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16, "CLUSTER_ID is 16 bytes, base64url"
    return advertised


def _port_number(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    by_name = {p.get("name"): p["containerPort"] for p in container.get("ports") or []}
    assert port in by_name, f"{container['name']} has no port named {port!r}"
    return int(by_name[port])


def _workload_for_service(svc: dict[str, Any], workloads: dict[str, dict[str, Any]]) -> dict[str, Any]:
    selector = svc["spec"]["selector"]
    matches = [
        w for w in workloads.values()
        if selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()
    ]
    assert matches, f"Service {svc['metadata']['name']} selects no pod template"
    return matches[0]


# ---------------------------------------------------------------------------------------------- compose


def test_every_compose_dependency_waits_for_the_healthcheck_of_the_service_it_depends_on(
    services: dict[str, dict[str, Any]],
) -> None:
    depending = {name: s["depends_on"] for name, s in services.items() if s.get("depends_on")}
    assert {"worker", "gateway"} <= set(depending)
    for name, deps in depending.items():
        assert isinstance(deps, dict), f"{name}: depends_on must name a condition"
        for dep, spec in deps.items():
            assert spec == {"condition": "service_healthy"}, f"{name} -> {dep}"
            test = services[dep].get("healthcheck", {}).get("test")
            assert test and test != ["NONE"], f"{name} waits for {dep}, which has no healthcheck"


def test_compose_healthchecks_ask_each_service_the_question_that_proves_it_serves(
    services: dict[str, dict[str, Any]],
) -> None:
    def command(name: str) -> str:
        test = services[name]["healthcheck"]["test"]
        return " ".join(test[1:]) if isinstance(test, list) else str(test)

    assert "/opt/kafka/bin/kafka-broker-api-versions.sh --bootstrap-server localhost:9092" in command("kafka")
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    gateway_check = command("gateway")
    cmd = services["gateway"]["command"]
    port = cmd[cmd.index("--port") + 1]
    assert f"http://127.0.0.1:{port}/healthz" in gateway_check
    assert f"{port}:{port}" in services["gateway"]["ports"]


def test_compose_seismo_services_bootstrap_from_the_listener_kafka_advertises_on_the_network(
    services: dict[str, dict[str, Any]],
) -> None:
    kafka = services["kafka"]
    assert kafka["image"] == KAFKA_IMAGE
    env = _compose_env(kafka)
    advertised = _kafka_config_is_consistent(env)
    host, port = advertised[env["KAFKA_INTER_BROKER_LISTENER_NAME"]]
    assert host in (kafka.get("hostname"), "kafka") and "kafka" in services
    for _, voter_host, _ in _voters(env["KAFKA_CONTROLLER_QUORUM_VOTERS"]):
        assert voter_host == host
    seismo = {n: s for n, s in services.items() if _is_seismo(s.get("image", ""))}
    assert {"worker", "gateway"} <= set(seismo)
    for name, s in seismo.items():
        assert _compose_env(s)["SEISMO_KAFKA_BOOTSTRAP"] == f"{host}:{port}", name


def test_compose_publishes_kafka_and_redis_where_host_side_seismo_looks_by_default(
    services: dict[str, dict[str, Any]],
) -> None:
    kafka_port = Settings.model_fields["local_kafka_port"].default
    redis_port = Settings.model_fields["local_redis_port"].default
    env = _compose_env(services["kafka"])
    assert _listeners(env["KAFKA_ADVERTISED_LISTENERS"])["HOST"] == ("127.0.0.1", kafka_port)
    assert _listeners(env["KAFKA_LISTENERS"])["HOST"][1] == kafka_port
    assert f"127.0.0.1:{kafka_port}:{kafka_port}" in services["kafka"]["ports"]
    assert f"127.0.0.1:{redis_port}:6379" in services["redis"]["ports"]


def test_compose_worker_uses_the_redis_service_with_an_append_only_file(
    services: dict[str, dict[str, Any]],
) -> None:
    redis = services["redis"]
    assert redis["image"] == REDIS_IMAGE
    assert "--appendonly" in redis["command"]
    assert redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    assert _compose_env(services["worker"])["SEISMO_REDIS_URL"] == "redis://redis:6379/0"
    assert services["worker"]["depends_on"].keys() == {"kafka", "redis"}
    assert any(v.endswith(":/data") for v in redis["volumes"])


def test_compose_runs_seismo_commands_that_the_cli_has(services: dict[str, dict[str, Any]]) -> None:
    assert services["worker"]["command"] == ["worker"]
    assert services["gateway"]["command"][:3] == ["gateway", "--host", "0.0.0.0"]
    commands = _cli_commands()
    for name in ("worker", "gateway"):
        assert services[name]["command"][0] in commands


# ---------------------------------------------------------------------------------------------- k8s


def test_kustomization_lists_every_kubernetes_manifest(k8s_files: dict[str, list[dict[str, Any]]]) -> None:
    (kustomization,) = k8s_files["kustomization.yaml"]
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed))
    assert set(listed) == set(k8s_files) - {"kustomization.yaml"}
    assert listed[0] == "namespace.yaml"
    assert kustomization["namespace"] == "seismo"


def test_every_kubernetes_object_lives_in_the_seismo_namespace(k8s_docs: list[dict[str, Any]]) -> None:
    (ns,) = [d for d in k8s_docs if d["kind"] == "Namespace"]
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for doc in k8s_docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == ns["metadata"]["name"], doc["metadata"]["name"]


def test_every_workload_declares_resources_and_a_restricted_non_root_security_context(
    workloads: dict[str, dict[str, Any]],
) -> None:
    assert {"kafka", "redis", "worker", "gateway"} <= set(workloads)
    for name, w in workloads.items():
        pod_sc = _pod_spec(w).get("securityContext") or {}
        assert pod_sc.get("runAsNonRoot") is True, name
        assert pod_sc.get("runAsUser", 1) != 0, name
        assert pod_sc.get("seccompProfile") == {"type": "RuntimeDefault"}, name
        for c in _containers(w):
            where = f"{name}/{c['name']}"
            for part in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c.get("resources", {}).get(part, {})), f"{where}: {part}"
            sc = c.get("securityContext") or {}
            assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, where
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where


def test_seismo_containers_have_a_read_only_root_with_writable_tmp_and_state_dirs(
    workloads: dict[str, dict[str, Any]],
) -> None:
    for name, w in _seismo_workloads(workloads):
        volumes = {v["name"]: v for v in _pod_spec(w).get("volumes") or []}
        for c in _containers(w, init=False):
            where = f"{name}/{c['name']}"
            assert c["securityContext"].get("readOnlyRootFilesystem") is True, where
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts") or []}
            needed = ["/tmp"]
            if "SEISMO_STATE_DIR" in _env(c):
                needed += [_env_value(c, "SEISMO_STATE_DIR"), _env_value(c, "SEISMO_CACHE_DIR")]
            for path in needed:
                assert path in mounts, f"{where}: {path} is not writable"
                assert "emptyDir" in volumes[mounts[path]], f"{where}: {path}"


def test_every_volume_mount_refers_to_a_declared_volume(workloads: dict[str, dict[str, Any]]) -> None:
    for name, w in workloads.items():
        declared = {v["name"] for v in _pod_spec(w).get("volumes") or []}
        declared |= {t["metadata"]["name"] for t in w["spec"].get("volumeClaimTemplates") or []}
        for c in _containers(w):
            for m in c.get("volumeMounts") or []:
                assert m["name"] in declared, f"{name}/{c['name']}: {m['name']}"


def test_every_service_selects_the_pods_of_some_workload_on_ports_they_expose(
    k8s_services: dict[str, dict[str, Any]], workloads: dict[str, dict[str, Any]],
) -> None:
    assert {"kafka", "redis", "gateway", "worker"} <= set(k8s_services)
    for name, svc in k8s_services.items():
        w = _workload_for_service(svc, workloads)
        assert svc["spec"]["selector"].items() <= w["spec"]["selector"]["matchLabels"].items(), name
        exposed = {int(p["containerPort"]) for c in _containers(w, init=False) for p in c.get("ports") or []}
        for port in svc["spec"].get("ports") or []:
            target = port.get("targetPort", port["port"])
            numbers = {_port_number(c, target) for c in _containers(w, init=False)
                       if isinstance(target, int) or target in {p.get("name") for p in c.get("ports") or []}}
            assert numbers and numbers <= exposed, f"Service {name} port {port['name']}"


def test_statefulsets_name_a_headless_service_that_selects_their_pods(
    k8s_services: dict[str, dict[str, Any]], workloads: dict[str, dict[str, Any]],
) -> None:
    for name, w in workloads.items():
        if w["kind"] != "StatefulSet":
            continue
        svc = k8s_services[w["spec"]["serviceName"]]
        assert svc["spec"]["selector"].items() <= w["spec"]["template"]["metadata"]["labels"].items(), name
        if name in ("kafka", "worker"):
            assert svc["spec"].get("clusterIP") == "None", name


def test_containers_that_listen_have_probes_and_http_servers_have_http_probes(
    workloads: dict[str, dict[str, Any]],
) -> None:
    for name, w in workloads.items():
        for c in _containers(w, init=False):
            if not c.get("ports"):
                continue
            where = f"{name}/{c['name']}"
            assert "readinessProbe" in c and "livenessProbe" in c, where
            if any(p.get("name") == "http" for p in c["ports"]):
                for probe in ("readinessProbe", "livenessProbe"):
                    assert "httpGet" in c[probe], f"{where}: {probe}"


def test_gateway_probes_hit_healthz_on_the_container_port_the_service_targets(
    k8s_services: dict[str, dict[str, Any]], workloads: dict[str, dict[str, Any]],
) -> None:
    gateway = workloads["gateway"]
    assert gateway["kind"] == "Deployment"
    assert gateway["spec"]["replicas"] == 2
    svc = k8s_services["gateway"]
    # MCP sessions are held in memory by the replica that opened them.
    assert svc["spec"]["sessionAffinity"] == "ClientIP"
    assert _workload_for_service(svc, workloads) is gateway
    (c,) = _containers(gateway)
    (svc_port,) = svc["spec"]["ports"]
    target = _port_number(c, svc_port["targetPort"])
    assert svc_port["port"] == target == Settings.model_fields["gateway_port"].default
    args = c["args"]
    assert args[0] == "gateway"
    assert args[args.index("--host") + 1] == "0.0.0.0"
    assert int(args[args.index("--port") + 1]) == target
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = c[probe]["httpGet"]
        assert get["path"] == "/healthz", probe
        assert _port_number(c, get["port"]) == target, probe


def test_kafka_is_a_kraft_statefulset_whose_advertised_address_the_clients_bootstrap_from(
    k8s_services: dict[str, dict[str, Any]], workloads: dict[str, dict[str, Any]],
) -> None:
    kafka = workloads["kafka"]
    assert kafka["kind"] == "StatefulSet"
    assert kafka["spec"]["volumeClaimTemplates"], "Kafka keeps its log on a PersistentVolumeClaim"
    (c,) = _containers(kafka)
    assert c["image"] == KAFKA_IMAGE
    assert _env(c)["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    env = {k: str(v["value"]) for k, v in _env(c).items() if "value" in v}
    mount = next(m["mountPath"] for m in c["volumeMounts"] if m["name"] == "data")
    assert env["KAFKA_LOG_DIRS"].startswith(mount + "/")
    pods = [f"{kafka['metadata']['name']}-{i}" for i in range(kafka["spec"]["replicas"])]
    advertised = _kafka_config_is_consistent(env)
    client = env["KAFKA_INTER_BROKER_LISTENER_NAME"]
    addresses = {
        f"{advertised[client][0].replace('$(POD_NAME)', pod)}:{advertised[client][1]}" for pod in pods
    }
    # kafka-0.kafka resolves because the pod kafka-0 sits under the headless Service "kafka", whose
    # records exist before readiness (the controller must resolve its own quorum address).
    svc = k8s_services[kafka["spec"]["serviceName"]]
    assert svc["spec"]["clusterIP"] == "None" and svc["spec"]["publishNotReadyAddresses"] is True
    for address in addresses:
        pod, subdomain = address.split(":")[0].split(".")
        assert pod in pods and subdomain == svc["metadata"]["name"]
        assert _port_number(c, int(address.split(":")[1])) in {p["containerPort"] for p in c["ports"]}
    for _, host, port in _voters(env["KAFKA_CONTROLLER_QUORUM_VOTERS"]):
        assert host.split(".") == [pods[0], svc["metadata"]["name"]]
        assert port in {p["port"] for p in svc["spec"]["ports"]}
    users = list(_seismo_containers(workloads))
    assert {"worker", "gateway"} <= {name for name, _ in users}
    for name, container in users:
        bootstrap = _env_value(container, "SEISMO_KAFKA_BOOTSTRAP").split(",")
        assert set(bootstrap) <= addresses, f"{name}/{container['name']}: {bootstrap} vs {addresses}"


def test_worker_metrics_are_served_where_the_scrape_annotations_and_probes_point(
    workloads: dict[str, dict[str, Any]],
) -> None:
    worker = workloads["worker"]
    (c,) = _containers(worker)
    port = int(_env_value(c, "SEISMO_WORKER_METRICS_PORT"))
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"metrics": port}
    notes = worker["spec"]["template"]["metadata"]["annotations"]
    assert notes["prometheus.io/scrape"] == "true" and int(notes["prometheus.io/port"]) == port
    assert notes["prometheus.io/path"] == "/metrics"
    for probe in ("readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": "/metrics", "port": "metrics"}


def test_worker_is_a_statefulset_whose_pods_name_their_static_group_membership(
    workloads: dict[str, dict[str, Any]], k8s_services: dict[str, dict[str, Any]],
) -> None:
    worker = workloads["worker"]
    assert worker["kind"] == "StatefulSet"
    (c,) = _containers(worker)
    assert c["args"] == ["worker"]
    instance = _env(c)["SEISMO_WORKER_INSTANCE_ID"]
    assert instance["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    partitions = int(_env(c).get("SEISMO_PARTITIONS", {}).get("value", Settings.model_fields["partitions"]
                                                                  .default))
    processes = int(_env(c).get("SEISMO_WORKER_PROCESSES", {}).get("value", 1))
    assert 1 <= worker["spec"]["replicas"] * processes <= partitions, "consumers beyond the partitions idle"
    redis_url = _env_value(c, "SEISMO_REDIS_URL")
    m = re.fullmatch(r"redis://([^:/]+):(\d+)/\d+", redis_url)
    assert m, redis_url
    redis_svc = k8s_services[m[1]]
    assert int(m[2]) in {p["port"] for p in redis_svc["spec"]["ports"]}
    redis = _workload_for_service(redis_svc, workloads)
    (rc,) = _containers(redis)
    assert rc["image"] == REDIS_IMAGE
    assert rc["args"][rc["args"].index("--appendonly") + 1] == "yes"
    assert redis["spec"]["volumeClaimTemplates"]


def test_pods_get_no_service_link_variables_that_could_shadow_seismo_settings(
    workloads: dict[str, dict[str, Any]], k8s_services: dict[str, dict[str, Any]],
) -> None:
    # A Service "seismo-gateway" would inject SEISMO_GATEWAY_PORT=tcp://..., which Settings would parse.
    for name, w in workloads.items():
        assert _pod_spec(w).get("enableServiceLinks") is False, name
    for name in k8s_services:
        prefix = name.upper().replace("-", "_") + "_"
        injected = {prefix + "SERVICE_HOST", prefix + "SERVICE_PORT", prefix + "PORT"}
        assert not injected & SETTINGS_VARS, name


def test_kafka_pod_keeps_service_links_out_of_the_broker_properties(
    workloads: dict[str, dict[str, Any]],
) -> None:
    # apache/kafka turns every KAFKA_* variable into a property; KAFKA_PORT would become `port`.
    assert _pod_spec(workloads["kafka"])["enableServiceLinks"] is False


def test_only_the_kubernetes_poller_mounts_a_service_account_token(
    workloads: dict[str, dict[str, Any]],
) -> None:
    for name, w in workloads.items():
        expected = name == "poller-kubernetes"
        assert _pod_spec(w).get("automountServiceAccountToken") is expected, name


def test_seismo_pods_run_as_the_user_the_image_creates(workloads: dict[str, dict[str, Any]]) -> None:
    uid = int(_dockerfile_args()["SEISMO_UID"])
    for name, w in _seismo_workloads(workloads):
        assert _pod_spec(w)["securityContext"]["runAsUser"] == uid, name


# ---------------------------------------------------------------------------------------------- env


def _all_manifest_env_names(services: dict[str, dict[str, Any]],
                            workloads: dict[str, dict[str, Any]]) -> set[str]:
    names = {k for s in services.values() for k in _compose_env(s)}
    names |= {k for w in workloads.values() for c in _containers(w) for k in _env(c)}
    names |= set(_dockerfile_env())
    return names


def test_every_seismo_variable_in_the_manifests_is_a_settings_field_or_a_documented_source_token(
    services: dict[str, dict[str, Any]], workloads: dict[str, dict[str, Any]],
) -> None:
    used = {n for n in _all_manifest_env_names(services, workloads) if n.startswith("SEISMO_")}
    assert {"SEISMO_KAFKA_BOOTSTRAP", "SEISMO_REDIS_URL", "SEISMO_WORKER_INSTANCE_ID"} <= used
    unknown = used - SETTINGS_VARS - SOURCE_TOKEN_VARS
    assert not unknown, f"not fields of seismo.settings.Settings: {sorted(unknown)}"
    docs = DOCS.read_text("utf-8")
    for var in used & SOURCE_TOKEN_VARS:
        assert var in docs, f"{var} is read by the pollers; docs/deploy.md must say so"


def test_manifests_hold_no_secret_values_only_references_to_a_secret_by_name(
    services: dict[str, dict[str, Any]], workloads: dict[str, dict[str, Any]],
    k8s_docs: list[dict[str, Any]],
) -> None:
    assert not [d for d in k8s_docs if d["kind"] == "Secret"]
    secretish = re.compile(r"TOKEN|PASSWORD|SECRET|API_KEY")
    for name, s in services.items():
        for key, value in _compose_env(s).items():
            if secretish.search(key):
                from_shell = re.fullmatch(r"\$\{[A-Z_]+(:?-?|:\?[^}]*)\}", value)  # ${X}, ${X:-}, ${X:?why}
                assert from_shell, f"{name}: {key} must come from the shell"
    refs = 0
    for name, w in workloads.items():
        for c in _containers(w):
            for key, entry in _env(c).items():
                if secretish.search(key):
                    assert "value" not in entry, f"{name}: {key} has a literal value"
                    assert entry["valueFrom"]["secretKeyRef"]["name"] in SECRET_NAMES
                    refs += 1
    assert refs
    for secret in SECRET_NAMES:
        assert secret in DOCS.read_text("utf-8")


# ------------------------------------------------------------------------------------- redis auth, network


def _from_secret(entry: dict[str, Any], secret: str, key: str) -> bool:
    ref = (entry.get("valueFrom") or {}).get("secretKeyRef") or {}
    return ref.get("name") == secret and ref.get("key") == key


def test_redis_requires_the_password_of_a_secret_and_every_seismo_client_of_it_gets_that_password(
    workloads: dict[str, dict[str, Any]],
) -> None:
    (redis,) = _containers(workloads["redis"])
    args = redis["args"]
    password_var = re.fullmatch(r"\$\(([A-Z_]+)\)", args[args.index("--requirepass") + 1])
    assert password_var, "the password is expanded from an env variable, not written here"
    env = _env(redis)
    assert _from_secret(env[password_var[1]], REDIS_SECRET, "password")
    assert _from_secret(env["REDISCLI_AUTH"], REDIS_SECRET, "password"), "the probes' redis-cli must log in"
    clients = [(n, c) for n, c in _seismo_containers(workloads) if "SEISMO_REDIS_URL" in _env(c)]
    assert {n for n, _ in clients} >= {"worker", "gateway"}
    for name, c in clients:
        assert _from_secret(_env(c)["SEISMO_REDIS_PASSWORD"], REDIS_SECRET, "password"), name


def test_compose_redis_requires_a_password_that_the_worker_and_the_gateway_get_from_the_shell(
    services: dict[str, dict[str, Any]],
) -> None:
    command = services["redis"]["command"]
    password = command[command.index("--requirepass") + 1]
    assert password.startswith("${SEISMO_REDIS_PASSWORD:?"), "compose refuses to start without one"
    assert _compose_env(services["redis"])["REDISCLI_AUTH"] == password
    for name in ("worker", "gateway"):
        assert _compose_env(services[name])["SEISMO_REDIS_PASSWORD"] == password, name


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a Kubernetes label selector (matchLabels, matchExpressions) selects ``labels``."""
    if not (selector.get("matchLabels") or selector.get("matchExpressions")):
        return True  # an empty selector selects every pod
    if not (selector.get("matchLabels") or {}).items() <= labels.items():
        return False
    for expr in selector.get("matchExpressions") or []:
        value = labels.get(expr["key"])
        op = expr["operator"]
        if op == "In" and value not in expr["values"]:
            return False
        if op == "NotIn" and value in expr["values"]:
            return False
        if op == "Exists" and value is None:
            return False
        if op == "DoesNotExist" and value is not None:
            return False
    return True


def _admitted(k8s_docs: list[dict[str, Any]], target: dict[str, str], port: int,
              source: dict[str, str]) -> bool:
    """Whether a pod labelled ``source`` (in the namespace) may connect to ``target`` pods on ``port``."""
    policies = [d for d in k8s_docs if d["kind"] == "NetworkPolicy"
                and _selects(d["spec"]["podSelector"], target) and "Ingress" in d["spec"]["policyTypes"]]
    if not policies:
        return True  # not isolated
    for policy in policies:
        for rule in policy["spec"].get("ingress") or []:
            ports = {p["port"] for p in rule.get("ports") or []}
            if ports and port not in ports:
                continue
            for peer in rule.get("from") or []:
                assert set(peer) == {"podSelector"}, "peers are pods of this namespace only"
                if _selects(peer["podSelector"], source):
                    return True
    return False


def _pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    return dict(workload["spec"]["template"]["metadata"]["labels"])


def test_network_policies_admit_only_seismo_s_pods_to_redis_and_kafka(
    k8s_docs: list[dict[str, Any]], workloads: dict[str, dict[str, Any]],
) -> None:
    redis, kafka = _pod_labels(workloads["redis"]), _pod_labels(workloads["kafka"])
    stranger = {"app.kubernetes.io/name": "something-else", "app.kubernetes.io/part-of": "seismo"}
    for target, port in ((redis, 6379), (kafka, 9092), (kafka, 9093)):
        assert not _admitted(k8s_docs, target, port, stranger), (target, port)
        assert not _admitted(k8s_docs, target, port, {}), (target, port)
    for name, c in _seismo_containers(workloads):
        labels = _pod_labels(workloads[name])
        env = _env(c)
        assert _admitted(k8s_docs, redis, 6379, labels) == ("SEISMO_REDIS_URL" in env), name
        if "SEISMO_KAFKA_BOOTSTRAP" in env:
            assert _admitted(k8s_docs, kafka, 9092, labels), name
        assert not _admitted(k8s_docs, kafka, 9093, labels), f"{name} reaches the KRaft controller"
    assert _admitted(k8s_docs, kafka, 9093, kafka), "the controller reaches its own quorum port"


# ---------------------------------------------------------------------------------------------- pollers


def test_poller_configs_are_valid_and_every_polled_source_gets_its_token_from_the_secret(
    k8s_docs: list[dict[str, Any]], workloads: dict[str, dict[str, Any]],
) -> None:
    (cm,) = [d for d in k8s_docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "seismo-pollers"]
    config = PollersFile.model_validate(yaml.safe_load(cm["data"]["pollers.yaml"]))
    assert config.kubernetes is not None and config.kubernetes.in_cluster
    PollersFile.model_validate(yaml.safe_load((ROOT / "deploy" / "pollers.example.yaml").read_text("utf-8")))
    pollers = {n: w for n, w in workloads.items() if n.startswith("poller-")}
    assert pollers
    for name, w in pollers.items():
        assert w["spec"]["strategy"]["type"] == "Recreate" and w["spec"]["replicas"] <= 1, name
        c = _containers(w, init=False)[0]
        verb, source, flag, path = c["args"]
        assert (verb, flag) == ("poll", "--config")
        section = getattr(config, source)
        assert section is not None, f"{name}: no [{source}] section in the ConfigMap"
        mount = next(m for m in c["volumeMounts"] if path.startswith(m["mountPath"] + "/"))
        volume = next(v for v in _pod_spec(w)["volumes"] if v["name"] == mount["name"])
        assert volume["configMap"]["name"] == cm["metadata"]["name"]
        assert path.rsplit("/", 1)[1] in cm["data"]
        if getattr(section, "token_env", None):
            assert _env(c)[section.token_env]["valueFrom"]["secretKeyRef"]["name"] == SECRET_NAME


def test_the_kubernetes_poller_is_bound_to_a_read_only_role(
    k8s_docs: list[dict[str, Any]], workloads: dict[str, dict[str, Any]],
) -> None:
    account = _pod_spec(workloads["poller-kubernetes"])["serviceAccountName"]
    assert any(d["kind"] == "ServiceAccount" and d["metadata"]["name"] == account for d in k8s_docs)
    (binding,) = [d for d in k8s_docs if d["kind"] == "RoleBinding"
                  and any(s["name"] == account for s in d["subjects"])]
    assert binding["roleRef"]["kind"] == "Role"
    (role,) = [d for d in k8s_docs
               if d["kind"] == "Role" and d["metadata"]["name"] == binding["roleRef"]["name"]]
    verbs = {v for rule in role["rules"] for v in rule["verbs"]}
    assert verbs <= {"get", "list", "watch"}
    resources = {r for rule in role["rules"] for r in rule["resources"]}
    assert {"pods", "pods/log", "events", "deployments"} <= resources


def test_pollers_create_the_topics_before_they_publish(workloads: dict[str, dict[str, Any]],
                                                        services: dict[str, dict[str, Any]]) -> None:
    for name, w in workloads.items():
        if name.startswith("poller-"):
            (init,) = _pod_spec(w)["initContainers"]
            assert "ensure_topics(Settings())" in " ".join(init["args"]), name
    compose_poller = " ".join(services["poller-sentry"]["command"])
    assert compose_poller.index("ensure_topics(Settings())") < compose_poller.index("exec seismo poll sentry")


# ---------------------------------------------------------------------------------------------- image


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text("utf-8"))
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def _dockerfile_args() -> dict[str, str]:
    return {k: v for op, rest in _dockerfile_instructions() if op == "ARG" and "=" in rest
            for k, v in [rest.split("=", 1)]}


def _final_stage() -> list[tuple[str, str]]:
    ins = _dockerfile_instructions()
    last_from = max(i for i, (op, _) in enumerate(ins) if op == "FROM")
    return ins[last_from:]


def _dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for op, rest in _final_stage():
        if op == "ENV":
            env.update(item.split("=", 1) for item in shlex.split(rest))
    return env


def _seismo_workloads(workloads: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [(n, w) for n, w in workloads.items() if _is_seismo(_containers(w, init=False)[0]["image"])]


def _cli_commands() -> set[str]:
    return {c.name or c.callback.__name__ for c in cli_app.registered_commands if c.callback}


def test_the_image_is_a_multi_stage_python_311_slim_build_that_installs_the_project_with_pip() -> None:
    ins = _dockerfile_instructions()
    args = _dockerfile_args()
    froms = [rest.split()[0].replace("${PYTHON_IMAGE}", args.get("PYTHON_IMAGE", "")) for op, rest in ins
             if op == "FROM"]
    assert len(froms) >= 2 and set(froms) == {"python:3.11-slim"}
    assert any(op == "RUN" and re.search(r"\bpip install \.(\s|$)", rest) for op, rest in ins)
    assert any(op == "COPY" and "--from=build" in rest for op, rest in _final_stage())
    assert not any("torch" in rest for _, rest in ins), "the image installs no torch"


def test_the_image_runs_seismo_as_a_non_root_user_and_serves_the_gateway_by_default() -> None:
    final = _final_stage()
    entrypoint = [json.loads(rest) for op, rest in final if op == "ENTRYPOINT"]
    cmd = [json.loads(rest) for op, rest in final if op == "CMD"]
    assert entrypoint[-1] == ["seismo"]
    assert cmd[-1] == ["gateway", "--host", "0.0.0.0"]
    assert cmd[-1][0] in _cli_commands()
    user = [rest for op, rest in final if op == "USER"][-1]
    uid = user.split(":")[0].replace("${SEISMO_UID}", _dockerfile_args()["SEISMO_UID"])
    assert uid.isdigit() and int(uid) != 0, "numeric, so runAsNonRoot can verify it"
    exposed = {int(p.split("/")[0]) for op, rest in final if op == "EXPOSE" for p in rest.split()}
    assert Settings.model_fields["gateway_port"].default in exposed


def test_the_image_points_state_and_cache_dirs_at_paths_it_creates_for_its_user() -> None:
    env = _dockerfile_env()
    runs = " ".join(rest for op, rest in _final_stage() if op == "RUN")
    for var in ("SEISMO_STATE_DIR", "SEISMO_CACHE_DIR"):
        path = env[var]
        assert path.startswith("/") and path in runs.split("mkdir -p", 1)[1], var
        assert re.search(rf"chown \S+ [^&]*{re.escape(path)}", runs), f"{var}: {path} not owned by the user"


def test_the_dockerignore_keeps_local_state_out_and_the_installable_sources_in() -> None:
    ignored = {line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text("utf-8").splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".venv", ".git", "tests"} <= ignored
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    needed = {"pyproject.toml", *(p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]
                                  ["include"])}
    if isinstance(project["project"].get("readme"), str):
        needed.add(project["project"]["readme"])
    assert not needed & ignored
    assert not any(re.match(r"torch", dep) for dep in project["project"]["dependencies"])


# ---------------------------------------------------------------------------------------------- docs


def test_the_deploy_guide_gives_the_commands_and_the_endpoint_the_files_provide() -> None:
    docs = DOCS.read_text("utf-8")
    for text in ("docker compose up -d", "http://localhost:8765/mcp", "kubectl apply -k k8s/",
                 "SEISMO_PARTITIONS", "SEISMO_KAFKA_BOOTSTRAP"):
        assert text in docs, text
