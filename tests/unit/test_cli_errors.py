"""Every mistake a user can make gets one ``error:`` line naming what was typed and the fix (issue 14).

These run the CLI in-process with typer's runner; nothing here needs Kafka or Redis
(addresses that refuse at once stand in for unreachable ones).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.cli_checks import assert_one_error
from tests.unit.test_cli import invoke, one_line

NOWHERE_KAFKA = "127.0.0.1:1"
NOWHERE_REDIS = "redis://127.0.0.1:1/0"

pytestmark = pytest.mark.usefixtures("clean_env")


# --- invalid SEISMO_* values ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "fix"),
    [
        ("SEISMO_PARTITIONS", "abc", "set a whole number ≥ 1"),
        ("SEISMO_PARTITIONS", "0", "set a whole number ≥ 1"),
        ("SEISMO_STATE_BACKEND", "foo", "set one of redis, memory"),
        ("SEISMO_EMBEDDER", "xyz", "set one of minilm, hash, off"),
        ("SEISMO_LOG_LEVEL", "LOUD", "set one of DEBUG, INFO, WARNING, ERROR"),
        ("SEISMO_LOG_FORMAT", "xml", "set one of text, json"),
        ("SEISMO_GATEWAY_PORT", "abc", "set a whole number ≥ 1 and ≤ 65535"),
        ("SEISMO_GATEWAY_PORT", "70000", "set a whole number ≥ 1 and ≤ 65535"),
        ("SEISMO_CORRELATE_WINDOW_S", "-5", "set a number > 0"),
        ("SEISMO_REDIS_URL", "bogus", "starts with redis://, rediss:// or unix://"),
        ("SEISMO_KAFKA_BOOTSTRAP", "bogus", "is not host:port"),
        ("SEISMO_TOPIC_PREFIX", "bad prefix/", "allow only letters, digits"),
    ],
)
@pytest.mark.parametrize("command", [("doctor",), ("incidents",), ("worker",), ("kafka", "status")])
def test_an_invalid_variable_exits_2_naming_the_variable_its_value_and_the_fix(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, fix: str, command: tuple[str, ...]
) -> None:
    monkeypatch.setenv(variable, value)
    assert_one_error(invoke(*command), 2, f"{variable}={value!r}", fix, "or unset it")


def test_log_level_and_format_are_accepted_in_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    from seismo.envcheck import load_settings

    monkeypatch.setenv("SEISMO_LOG_LEVEL", "debug")
    monkeypatch.setenv("SEISMO_LOG_FORMAT", "JSON")
    settings = load_settings()
    assert (settings.log_level, settings.log_format) == ("DEBUG", "json")


# --- files ---------------------------------------------------------------------------------------------


LATIN1_TOML = '[grafana]\nbase_url = "http://caf\xe9.example"\n'.encode("latin-1")


def test_a_poller_config_that_is_not_utf8_exits_2_naming_the_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "pollers.toml"
    config.write_bytes(LATIN1_TOML)
    assert_one_error(invoke("poll", "grafana", "--config", config), 2, str(config), "not UTF-8",
                     "line 2", "iconv")


def test_a_mask_rules_file_that_is_not_utf8_stops_the_worker_before_kafka(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_bytes(LATIN1_TOML)
    monkeypatch.setenv("SEISMO_MASK_RULES_FILE", str(rules))
    monkeypatch.setenv("SEISMO_KAFKA_BOOTSTRAP", NOWHERE_KAFKA)
    assert_one_error(invoke("worker"), 2, "SEISMO_MASK_RULES_FILE", str(rules), "not UTF-8")


def test_a_missing_mask_rules_file_stops_the_worker_and_fails_the_doctor(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from seismo.local import kafka, redis

    missing = tmp_path / "nonexistent.toml"
    monkeypatch.setenv("SEISMO_MASK_RULES_FILE", str(missing))
    assert_one_error(invoke("worker"), 2, f"SEISMO_MASK_RULES_FILE={missing} does not exist", "unset it")

    monkeypatch.setattr(kafka, "broker_answers", lambda *a, **k: True)
    monkeypatch.setattr(redis, "redis_answers", lambda *a, **k: True)
    doctor = invoke("doctor")
    assert doctor.exit_code == 1
    assert f"FAIL masks SEISMO_MASK_RULES_FILE={missing} does not exist" in one_line(doctor.stdout)


# --- unreachable services ------------------------------------------------------------------------------


def test_worker_with_an_unreachable_broker_fails_at_once_naming_the_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEISMO_KAFKA_BOOTSTRAP", NOWHERE_KAFKA)
    assert_one_error(invoke("worker", "--role", "score"), 1, f"Kafka at {NOWHERE_KAFKA} does not answer",
                     "SEISMO_KAFKA_BOOTSTRAP")


@pytest.mark.parametrize("command", [("ingest",), ("incidents",), ("dlq",)])
def test_data_commands_with_an_unreachable_broker_name_it_and_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: tuple[str, ...]
) -> None:
    monkeypatch.setenv("SEISMO_KAFKA_BOOTSTRAP", NOWHERE_KAFKA)
    args = [*command, tmp_path / "e.jsonl"] if command == ("ingest",) else list(command)
    (tmp_path / "e.jsonl").write_text("{}\n", "utf-8")
    assert_one_error(invoke(*args), 1, f"Kafka at {NOWHERE_KAFKA} does not answer",
                     "check SEISMO_KAFKA_BOOTSTRAP")


def test_doctor_fails_when_the_redis_state_backend_does_not_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    from seismo.local import kafka

    monkeypatch.setattr(kafka, "broker_answers", lambda *a, **k: True)
    monkeypatch.setenv("SEISMO_KAFKA_BOOTSTRAP", NOWHERE_KAFKA)
    monkeypatch.setenv("SEISMO_REDIS_URL", NOWHERE_REDIS)
    result = invoke("doctor")
    assert result.exit_code == 1
    assert "FAIL redis" in result.stdout
    assert "SEISMO_STATE_BACKEND is redis" in one_line(result.stdout)

    monkeypatch.setenv("SEISMO_STATE_BACKEND", "memory")
    relaxed = invoke("doctor")
    assert relaxed.exit_code == 0, relaxed.stdout
    assert "warn redis" in relaxed.stdout


def test_doctor_with_a_remote_broker_down_does_not_suggest_starting_a_local_one_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from seismo.local import redis

    monkeypatch.setattr(redis, "redis_answers", lambda *a, **k: True)
    monkeypatch.setenv("SEISMO_KAFKA_BOOTSTRAP", NOWHERE_KAFKA)
    result = invoke("doctor")
    assert result.exit_code == 1
    assert "check SEISMO_KAFKA_BOOTSTRAP" in one_line(result.stdout)
    assert "or unset it and run `seismo kafka start`" in one_line(result.stdout)


def test_doctor_never_prints_the_redis_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEISMO_KAFKA_BOOTSTRAP", NOWHERE_KAFKA)
    monkeypatch.setenv("SEISMO_REDIS_URL", "redis://:hunter2@127.0.0.1:1/0")
    result = invoke("doctor")
    assert "hunter2" not in result.stdout + result.stderr
    assert "redis://:***@127.0.0.1:1/0" in result.stdout


# --- kafka / redis with a remote address ---------------------------------------------------------------


def test_kafka_stop_refuses_while_kafka_bootstrap_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEISMO_KAFKA_BOOTSTRAP", NOWHERE_KAFKA)
    assert_one_error(invoke("kafka", "stop"), 1, f"SEISMO_KAFKA_BOOTSTRAP is set ({NOWHERE_KAFKA})",
                     "nothing to stop", "unset it")


def test_kafka_status_with_kafka_bootstrap_reports_only_that_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEISMO_KAFKA_BOOTSTRAP", NOWHERE_KAFKA)
    result = invoke("kafka", "status")
    assert result.exit_code == 1
    assert one_line(result.stdout) == f"Kafka {NOWHERE_KAFKA} (SEISMO_KAFKA_BOOTSTRAP): does not answer"


def test_redis_stop_refuses_while_redis_url_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEISMO_REDIS_URL", NOWHERE_REDIS)
    assert_one_error(invoke("redis", "stop"), 1, "SEISMO_REDIS_URL is set", "nothing to stop")


# --- gateway and demo ports ----------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["gateway", "demo"])
def test_a_port_out_of_range_exits_2_naming_it(command: str) -> None:
    assert_one_error(invoke(command, "--port", "70000"), 2, "--port 70000 is not a TCP port", "1 to 65535")


def test_a_missing_tls_file_of_the_gateway_exits_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SEISMO_GATEWAY_TLS_CERT", str(tmp_path / "nope.pem"))
    monkeypatch.setenv("SEISMO_GATEWAY_TLS_KEY", str(tmp_path / "nope.key"))
    assert_one_error(invoke("gateway", "--port", "28914"), 2, "SEISMO_GATEWAY_TLS_CERT=", "no such file")
    (tmp_path / "nope.pem").write_text("x", "utf-8")
    monkeypatch.delenv("SEISMO_GATEWAY_TLS_KEY")
    assert_one_error(invoke("gateway", "--port", "28914"), 2, "TLS needs both", "SEISMO_GATEWAY_TLS_KEY")


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield held.getsockname()[1]


@pytest.mark.parametrize("command", ["gateway", "demo"])
def test_a_port_in_use_exits_1_before_anything_starts(command: str, busy_port: int) -> None:
    assert_one_error(invoke(command, "--port", str(busy_port)), 1, f"cannot listen on 127.0.0.1:{busy_port}",
                     "choose another port with --port")


# --- usage errors: the same one-line style --------------------------------------------------------------


def test_a_missing_file_is_one_error_line_with_the_help_hint_not_a_box(tmp_path: Path) -> None:
    assert_one_error(invoke("ingest", tmp_path / "nope.jsonl"), 2, " ingest: ", "does not exist",
                     " ingest --help`")


def test_an_unknown_worker_role_lists_the_roles() -> None:
    from seismo.cli import WorkerRole
    from stream_processors.runtime.worker import ROLES

    assert [r.value for r in WorkerRole] == list(ROLES)
    roles = ", ".join(repr(r) for r in ROLES)
    assert_one_error(invoke("worker", "--role", "x"), 2, f"'x' is not one of {roles}")


def test_version_prints_the_version() -> None:
    from seismo import __version__

    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"seismo {__version__}"


def test_poll_without_its_token_exits_2_naming_the_variable(tmp_path: Path) -> None:
    config = tmp_path / "pollers.toml"
    config.write_text('[grafana]\nbase_url = "http://127.0.0.1:1"\n', "utf-8")
    assert_one_error(invoke("poll", "grafana", "--config", config), 2, "$SEISMO_GRAFANA_TOKEN is not set",
                     "seismo doctor --config")


def test_an_unexpected_exception_is_one_line_that_says_it_is_a_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    from seismo import doctor

    def broken(*_: object) -> bool:
        raise KeyError("oops")

    monkeypatch.setattr(doctor, "run_doctor", broken)
    assert_one_error(invoke("doctor"), 70, "unexpected KeyError", "SEISMO_DEBUG=1")


COMMANDS = [("ingest",), ("incidents",), ("dlq",), ("simulate",), ("templates",), ("detect",), ("worker",),
            ("gateway",), ("demo",), ("doctor",), ("poll",), ("kafka", "start"), ("redis", "status"), ()]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_no_bool_placeholder_and_no_braces(command: tuple[str, ...]) -> None:
    text = invoke(*command, "--help").stdout
    assert "<bool>" not in text
    assert "{" not in text


def test_usage_lines_name_files_as_the_readme_does() -> None:
    assert "ingest [OPTIONS] FILE" in one_line(invoke("ingest", "--help").stdout)
    assert "poll [OPTIONS] SOURCE" in one_line(invoke("poll", "--help").stdout)


def test_the_demo_names_the_gateways_own_error_and_its_log_when_it_exits(tmp_path: Path) -> None:
    import subprocess
    import sys

    from seismo.demo import DemoError, _wait_http

    log = tmp_path / "gateway.log"
    log.write_text("MCP endpoint: http://127.0.0.1:1/mcp\nerror: cannot listen on 127.0.0.1:1: Permission "
                   "denied; choose another port with --port or SEISMO_GATEWAY_PORT\n", "utf-8")
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    proc.wait()
    with pytest.raises(DemoError) as caught:
        _wait_http("http://127.0.0.1:1/healthz", proc, 5, log)
    assert str(caught.value) == (f"the gateway exited with code 3: error: cannot listen on 127.0.0.1:1: "
                                 f"Permission denied; choose another port with --port or "
                                 f"SEISMO_GATEWAY_PORT (log {log})")


def test_poll_kubernetes_with_a_missing_kubeconfig_exits_2_before_kafka(tmp_path: Path) -> None:
    config = tmp_path / "pollers.yaml"
    missing = tmp_path / "nope" / "kubeconfig"
    config.write_text(f"kubernetes:\n  kubeconfig: {missing}\n", "utf-8")
    assert_one_error(invoke("poll", "kubernetes", "--config", config), 2,
                     f"cannot use the kubeconfig {missing}", "in_cluster: true")
