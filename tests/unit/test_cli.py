"""The ``seismo`` command line: simulate, templates, detect and poll's checks, on small files; no network."""

from __future__ import annotations

import csv
import inspect
import io
import json
import math
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from seismo import commands
from seismo.cli import PollSource, app

HEAVY = ("numpy", "river", "faust", "torch", "boto3", "kubernetes")

HDFS_LINES = [
    "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block "
    "blk_38865049064139660 terminating",
    "081109 203807 222 INFO dfs.DataNode$PacketResponder: PacketResponder 0 for block "
    "blk_-6952295868487656571 terminating",
    "081109 204005 35 INFO dfs.FSNamesystem: BLOCK* NameSystem.addStoredBlock: blockMap updated: "
    "10.251.73.220:50010 is added to blk_7128370237687728475 size 67108864",
]


def invoke(*args: str | Path) -> Result:
    """Run ``seismo ARGS`` in-process with stdout and stderr kept apart (click 8.1 and 8.2+ alike)."""
    kwargs: dict[str, Any] = (
        {"mix_stderr": False} if "mix_stderr" in inspect.signature(CliRunner.__init__).parameters else {}
    )
    return CliRunner(**kwargs).invoke(app, [str(a) for a in args])


def one_line(text: str) -> str:
    return " ".join(text.split())


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


# --- the CLI as a whole ------------------------------------------------------------------------------


def test_seismo_help_lists_every_command() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for name in ("kafka", "redis", "worker", "gateway", "ingest", "incidents", "demo", "doctor",
                 "simulate", "poll", "templates", "detect"):
        assert name in result.stdout


def test_importing_the_cli_loads_none_of_the_heavy_libraries() -> None:
    probe = f"import sys, seismo.cli; print([m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_each_new_command_answers_help() -> None:
    for name in ("simulate", "poll", "templates", "detect"):
        result = invoke(name, "--help")
        assert result.exit_code == 0, name


# --- simulate ----------------------------------------------------------------------------------------


def test_simulate_writes_events_that_ingest_dry_run_accepts_without_rejections(tmp_path: Path) -> None:
    events, truth = tmp_path / "events.jsonl", tmp_path / "truth.json"
    result = invoke("simulate", "--services", "3", "--incidents", "2", "--seed", "7",
                    "--duration-minutes", "60", "--out", events, "--truth", truth)
    assert result.exit_code == 0, result.stderr
    lines = events.read_text("utf-8").splitlines()
    assert all(json.loads(line)["id"] for line in lines)
    assert len(json.loads(truth.read_text("utf-8"))["incidents"]) == 2
    summary = one_line(result.stdout)
    assert summary.startswith(f"{len(lines)} events written to {events}, 2 incidents injected")

    checked = invoke("ingest", "--dry-run", events)
    assert checked.exit_code == 0, checked.stderr
    assert f"{len(lines)} valid, 0 rejected" in checked.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--services", "0"), "at least one service"),
        (("--incidents", "-1"), "incidents must be"),
        (("--duration-minutes", "10"), "--duration-minutes must be at least 40"),
    ],
)
def test_simulate_with_invalid_arguments_exits_2_saying_what_is_wrong(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result = invoke("simulate", *args, "--out", tmp_path / "e.jsonl", "--truth", tmp_path / "t.json")
    assert result.exit_code == 2
    assert message in one_line(result.stderr)
    assert not (tmp_path / "e.jsonl").exists()


# --- templates ---------------------------------------------------------------------------------------


def test_templates_on_raw_lines_gives_one_row_per_line_and_one_id_per_template(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("Connection from 10.0.0.1 closed\nConnection from 10.0.0.2 closed\n\n"
                   "Disk quota exceeded for user alice\n", "utf-8")
    result = invoke("templates", log)
    assert result.exit_code == 0, result.stderr
    rows = csv_rows(result.stdout)
    assert rows[0] == ["LineId", "EventId", "EventTemplate"]
    assert [r[0] for r in rows[1:]] == ["1", "2", "4"]  # the blank line 3 has no row
    assert rows[1][1] == rows[2][1] != rows[3][1]
    assert "4 lines, 2 templates" in one_line(result.stderr)


def test_templates_in_loghub_hdfs_format_writes_the_csv_to_out(tmp_path: Path) -> None:
    log, out = tmp_path / "HDFS.log", tmp_path / "HDFS.csv"
    log.write_text("\n".join(HDFS_LINES) + "\nnot an HDFS line\n", "utf-8")
    result = invoke("templates", log, "--format", "loghub:HDFS", "--out", out)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    rows = csv_rows(out.read_text("utf-8"))
    assert rows[0] == ["LineId", "EventId", "EventTemplate"]
    assert len(rows) == 1 + 3
    assert rows[1][1] == rows[2][1] != rows[3][1]
    assert rows[1][2] == "PacketResponder <NUM> for block <ID> terminating"
    summary = one_line(result.stderr)
    assert "4 lines, 2 templates, 1 line skipped" in summary
    assert str(out) in summary


def test_templates_on_a_big_file_keeps_the_progress_bar_out_of_the_csv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commands, "BIG_FILE_BYTES", 0)  # every file counts as big
    log = tmp_path / "HDFS.log"
    log.write_text("\n".join(HDFS_LINES * 50) + "\n", "utf-8")
    result = invoke("templates", log, "--format", "loghub:hdfs")
    assert result.exit_code == 0, result.stderr
    rows = csv_rows(result.stdout)
    assert len(rows) == 1 + 150
    assert all(len(r) == 3 for r in rows)


@pytest.mark.parametrize("fmt", ["loghub:NoSuchSystem", "json", "loghub:"])
def test_an_unknown_format_exits_2_listing_the_16_supported_systems(tmp_path: Path, fmt: str) -> None:
    from stream_processors.normalize.templating.loghub import loghub_systems

    log = tmp_path / "a.log"
    log.write_text("hello\n", "utf-8")
    result = invoke("templates", log, "--format", fmt)
    assert result.exit_code == 2
    message = one_line(result.stderr)
    assert len(loghub_systems()) == 16
    assert all(system in message for system in loghub_systems())
    assert result.stdout == ""


# --- detect ------------------------------------------------------------------------------------------


def write_series(path: Path, spike_at: int, points: int = 600) -> datetime:
    start = datetime(2024, 1, 1)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "value"])
        for i in range(points):
            value = 10 + math.sin(i / 10) + (50 if i == spike_at else 0)
            writer.writerow([(start + timedelta(minutes=5 * i)).isoformat(sep=" "), value])
    return start + timedelta(minutes=5 * spike_at)


def test_detect_flags_the_spike_in_a_synthetic_series(tmp_path: Path) -> None:
    series, out = tmp_path / "series.csv", tmp_path / "scored.csv"
    spike = write_series(series, spike_at=500)
    result = invoke("detect", series, "--out", out, "--seed", "3")
    assert result.exit_code == 0, result.stderr
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["timestamp", "value", "score", "is_anomaly"]
    assert len(rows) == 600
    flagged = [r["timestamp"] for r in rows if r["is_anomaly"] == "1"]
    assert spike.isoformat(sep=" ") in flagged
    assert len(flagged) < 10
    assert f"600 points, {len(flagged)} anomalies" in one_line(result.stderr)


def test_detect_without_out_writes_the_scored_csv_to_stdout(tmp_path: Path) -> None:
    series = tmp_path / "series.csv"
    write_series(series, spike_at=450, points=460)
    result = invoke("detect", series)
    assert result.exit_code == 0, result.stderr
    assert csv_rows(result.stdout)[0] == ["timestamp", "value", "score", "is_anomaly"]
    assert len(csv_rows(result.stdout)) == 461


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("time,v\n2024-01-01 00:00:00,1\n", "expected columns timestamp,value"),
        ("timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 00:05:00,abc\n",
         "line 3: value 'abc' is not a number"),
        ("timestamp,value\nyesterday,1\n", "line 2: timestamp 'yesterday' is not ISO-8601"),
        ("timestamp,value\n2024-01-01 00:00:00\n", "line 2 has fewer than two fields"),
        ("timestamp,value\n", "no rows"),
        ("", "expected columns timestamp,value"),
    ],
)
def test_a_bad_csv_exits_2_naming_the_problem(tmp_path: Path, content: str, problem: str) -> None:
    series = tmp_path / "bad.csv"
    series.write_text(content, "utf-8")
    result = invoke("detect", series)
    assert result.exit_code == 2
    assert problem in one_line(result.stderr)
    assert "Traceback" not in result.stderr


# --- poll (checks that run before Kafka is touched) --------------------------------------------------


def test_poll_offers_exactly_the_sources_the_poll_module_supports() -> None:
    import importlib

    from producers.poll import SOURCES

    assert sorted(s.value for s in PollSource) == sorted(SOURCES)
    for source in SOURCES:
        assert hasattr(importlib.import_module(f"producers.sources.{source}"), "open_streams"), source


def test_poll_with_a_config_lacking_the_sources_section_exits_2_naming_it(tmp_path: Path) -> None:
    config = tmp_path / "pollers.toml"
    config.write_text('[sentry]\norganization = "acme"\nprojects = ["pay"]\n', "utf-8")
    result = invoke("poll", "cloudwatch", "--config", config)
    assert result.exit_code == 2
    assert "the poller config has no [cloudwatch] section" in one_line(result.stderr)


def test_poll_cloudwatch_with_an_unknown_key_exits_2_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "pollers.yaml"
    config.write_text("cloudwatch:\n  region: eu-west-1\n  interval_s: 10\n  log_groups: [x]\n", "utf-8")
    result = invoke("poll", "cloudwatch", "--config", config)
    assert result.exit_code == 2
    assert "cloudwatch.log_groups" in one_line(result.stderr)


def test_poll_with_an_unknown_source_is_a_usage_error(tmp_path: Path) -> None:
    config = tmp_path / "pollers.toml"
    config.write_text("", "utf-8")
    assert invoke("poll", "datadog", "--config", config).exit_code == 2


def test_poll_help_offers_the_metrics_port() -> None:
    assert "--metrics-port" in one_line(invoke("poll", "--help").stdout)


# --- doctor --config (source checks against the fake APIs; Kafka and Redis stand in) -------------------


@pytest.fixture
def broker_and_redis_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The doctor's Kafka and Redis lines pass without a network, so only the source lines decide."""
    from seismo.local import kafka, redis

    monkeypatch.setenv("SEISMO_KAFKA_BOOTSTRAP", "127.0.0.1:9")
    monkeypatch.setattr(kafka, "broker_answers", lambda *a, **k: True)
    monkeypatch.setattr(redis, "redis_answers", lambda *a, **k: True)


@pytest.mark.usefixtures("broker_and_redis_answer")
def test_doctor_with_a_config_prints_one_line_per_source_and_exits_1_when_one_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fakes.grafana import FakeGrafana

    monkeypatch.setenv("SEISMO_GRAFANA_TOKEN", "glsa_test")
    monkeypatch.delenv("SEISMO_SENTRY_TOKEN", raising=False)
    with FakeGrafana() as grafana:
        config = tmp_path / "pollers.yaml"
        config.write_text(f"grafana:\n  base_url: {grafana.url}\nsentry:\n  base_url: {grafana.url}\n"
                          "  organization: acme\n  projects: [payments]\n", "utf-8")
        result = invoke("doctor", "--config", config)
    lines = [line for line in result.stdout.splitlines() if line.split()[1:2] != ["native"]]
    assert result.exit_code == 1, result.stdout
    assert lines[0].startswith("ok   kafka")
    assert one_line(lines[2]).startswith("FAIL sentry no token: set $SEISMO_SENTRY_TOKEN")
    assert one_line(lines[3]) == f"ok grafana {grafana.url} (Grafana 11.1.0): token accepted in org 1"


@pytest.mark.usefixtures("broker_and_redis_answer")
def test_doctor_with_a_config_where_every_source_passes_exits_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fakes.grafana import FakeGrafana

    monkeypatch.setenv("SEISMO_GRAFANA_TOKEN", "glsa_test")
    with FakeGrafana() as grafana:
        config = tmp_path / "pollers.toml"
        config.write_text(f'[grafana]\nbase_url = "{grafana.url}"\n', "utf-8")
        result = invoke("doctor", "--config", config)
    assert result.exit_code == 0, result.stdout
    assert [line.split()[:2] for line in result.stdout.splitlines() if "native" not in line] == [
        ["ok", "kafka"], ["ok", "redis"], ["ok", "grafana"]]


@pytest.mark.usefixtures("broker_and_redis_answer")
def test_doctor_says_whether_the_compiled_modules_run_and_their_absence_only_warns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEISMO_NATIVE", "0")
    result = invoke("doctor")
    native = [one_line(line) for line in result.stdout.splitlines() if line.split()[1:2] == ["native"]]
    assert native == ["warn native compiled hot modules off: SEISMO_NATIVE=0 "
                      "(the pure-Python ones run, about a third slower)"]
    assert result.exit_code == 0, result.stdout


@pytest.mark.usefixtures("broker_and_redis_answer")
def test_doctor_with_an_invalid_config_fails_on_a_config_line(tmp_path: Path) -> None:
    config = tmp_path / "pollers.toml"
    config.write_text("[grafana]\nbase_url = 3\n", "utf-8")
    result = invoke("doctor", "--config", config)
    assert result.exit_code == 1
    assert "FAIL config" in one_line(result.stdout)
    assert "grafana.base_url" in one_line(result.stdout)
