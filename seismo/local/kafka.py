"""``seismo kafka start|stop|status``: one local KRaft node from Maven Central jars.

The jars of ``org.apache.kafka:kafka_2.13`` (with its runtime dependencies and
a log4j2 binding, see ``pom.xml`` beside this module) are fetched once with
``mvn dependency:copy-dependencies`` into the cache directory, then the node's
storage is formatted and ``kafka.Kafka`` started with the machine's Java 17.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from seismo.local.process import LocalServiceError, ManagedProcess, ProcessRecord
from seismo.settings import Settings

MARKER = "kafka.Kafka"


def _resource(name: str) -> str:
    return resources.files("seismo.local").joinpath(name).read_text("utf-8")


def kafka_version() -> str:
    match = re.search(r"<kafka.version>([^<]+)</kafka.version>", _resource("pom.xml"))
    if match is None:  # pragma: no cover - the shipped pom always names it
        raise LocalServiceError("pom.xml names no kafka.version")
    return match.group(1)


def jars_dir(settings: Settings) -> Path:
    return settings.cache_dir / "kafka" / kafka_version() / "libs"


def fetch_jars(settings: Settings) -> Path:
    """Download the broker jars with Maven unless cached.  Blocks; needs ``mvn`` and the network."""
    target = jars_dir(settings)
    if target.is_dir() and any(target.glob("kafka_2.13-*.jar")):
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise LocalServiceError(
            "Apache Maven (mvn) is needed once to fetch the Kafka jars: apt-get install -y maven, "
            "or point SEISMO_KAFKA_BOOTSTRAP at an existing broker"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    pom = target.parent / "pom.xml"
    pom.write_text(_resource("pom.xml"))
    tmp = target.with_name("libs.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    proc = subprocess.run(
        [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
         f"-DoutputDirectory={tmp}", "-DincludeScope=runtime"],
        capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        raise LocalServiceError(f"mvn could not fetch the Kafka jars:\n{proc.stdout[-2000:]}")
    tmp.rename(target)
    return target


def broker_answers(bootstrap: str, timeout: float = 2.0) -> bool:
    """True when a broker at ``bootstrap`` answers a metadata request."""
    admin = AdminClient(
        {"bootstrap.servers": bootstrap, "socket.connection.setup.timeout.ms": 2000, "log_level": 0}
    )
    try:
        admin.list_topics(timeout=timeout)
    except KafkaException:
        return False
    return True


@dataclass(frozen=True)
class KafkaStatus:
    bootstrap: str
    managed: ProcessRecord | None
    reachable: bool


class LocalKafka:
    """The broker ``seismo kafka`` manages under ``settings.state_dir/kafka``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.proc = ManagedProcess("kafka", settings.state_dir)
        self.data_dir = self.proc.dir / "data"

    def status(self) -> KafkaStatus:
        bootstrap = self.settings.bootstrap
        return KafkaStatus(bootstrap, self.proc.record(), broker_answers(bootstrap))

    def start(self, timeout: float = 90.0) -> KafkaStatus:
        """Start the local broker unless one answers already.  Idempotent; blocks until ready."""
        if self.settings.kafka_bootstrap:
            raise LocalServiceError(
                f"SEISMO_KAFKA_BOOTSTRAP is set ({self.settings.kafka_bootstrap}); "
                "Seismo uses that broker and starts none"
            )
        current = self.status()
        if current.reachable:
            return current
        java = shutil.which("java")
        if java is None:
            raise LocalServiceError(
                "Java 17+ is needed to run Kafka: apt-get install -y openjdk-17-jre-headless"
            )
        libs = fetch_jars(self.settings)
        config = self.proc.dir / "server.properties"
        self.proc.dir.mkdir(parents=True, exist_ok=True)
        config.write_text(
            _resource("server.properties").format(
                port=self.settings.local_kafka_port,
                controller_port=self.settings.local_kafka_controller_port,
                data_dir=self.data_dir,
            )
        )
        log4j = self.proc.dir / "log4j2.yaml"
        log4j.write_text(_resource("log4j2.yaml"))
        classpath = f"{libs}/*"
        if not (self.data_dir / "meta.properties").exists():
            fmt = subprocess.run(
                [java, "-cp", classpath, "kafka.tools.StorageTool", "format", "-t",
                 _cluster_id(), "-c", str(config), "--ignore-formatted"],
                capture_output=True, text=True, check=False,
            )
            if fmt.returncode != 0:
                raise LocalServiceError(f"formatting Kafka storage failed:\n{fmt.stdout}{fmt.stderr}")
        heap = self.settings.local_kafka_heap
        self.proc.start(
            [java, f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC",
             f"-Dlog4j2.configurationFile={log4j}", "-cp", classpath, MARKER, str(config)],
            address=self.settings.local_bootstrap,
            marker=MARKER,
            ready=lambda: broker_answers(self.settings.local_bootstrap),
            timeout=timeout,
        )
        return self.status()

    def stop(self) -> bool:
        """Stop the broker this module started; never touches any other process."""
        return self.proc.stop()


def _cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding."""
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
