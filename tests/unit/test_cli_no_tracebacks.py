"""Issue 14's target: no Python traceback is reachable from the CLI with bad input or a missing dependency.

Every command runs as a real subprocess (``python -m seismo``) with bad environment values,
missing files, non-UTF-8 files, and Kafka and Redis addresses that do not answer; each must
end with a non-zero exit code and a line saying why (``error: …``, a doctor ``FAIL`` line, a
status's "does not answer", a rejected line's reason), never a traceback and never the
"this is a bug" catch-all.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

NOWHERE = {"SEISMO_KAFKA_BOOTSTRAP": "127.0.0.1:1", "SEISMO_REDIS_URL": "redis://127.0.0.1:1/0"}
BAD_VALUES = {
    "SEISMO_PARTITIONS": "abc", "SEISMO_STATE_BACKEND": "foo", "SEISMO_EMBEDDER": "xyz",
    "SEISMO_LOG_LEVEL": "LOUD", "SEISMO_GATEWAY_PORT": "70000", "SEISMO_CORRELATE_WINDOW_S": "-5",
    "SEISMO_REDIS_URL": "bogus", "SEISMO_TOPIC_PREFIX": "bad prefix/", "SEISMO_KAFKA_BOOTSTRAP": "bogus",
}
LATIN1 = "caf\xe9 password=hunter2\n".encode("latin-1")


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)


def files(tmp: Path) -> dict[str, Path]:
    names = {"latin1_log": "latin1.log", "latin1_jsonl": "latin1.jsonl", "latin1_csv": "latin1.csv",
             "latin1_toml": "latin1.toml", "good_jsonl": "good.jsonl", "grafana_toml": "grafana.toml",
             "missing": "missing.toml"}
    paths = {key: tmp / name for key, name in names.items()}
    paths["latin1_log"].write_bytes(LATIN1)
    paths["latin1_jsonl"].write_bytes(b'{"message": "' + LATIN1.strip() + b'"}\n')
    paths["latin1_csv"].write_bytes(b"timestamp,value\n2024-05-01T12:00:00Z,1\n" + LATIN1)
    paths["latin1_toml"].write_bytes(b'[grafana]\nbase_url = "http://' + LATIN1.strip()[:5] + b'"\n')
    paths["good_jsonl"].write_text('{"source": "file", "kind": "log", "timestamp": "2024-05-01T12:00:00Z", '
                                   '"service": "pay", "severity": "info", "message": "ok"}\n', "utf-8")
    paths["grafana_toml"].write_text('[grafana]\nbase_url = "http://127.0.0.1:1"\n', "utf-8")
    return paths


def cases(tmp: Path) -> list[Case]:
    f = files(tmp)
    sim = ("simulate", "--out", str(tmp / "e.jsonl"), "--truth", str(tmp / "t.json"), "--services", "2",
           "--incidents", "1", "--duration-minutes", "40")
    good, grafana = str(f["good_jsonl"]), str(f["grafana_toml"])
    settings_commands: list[tuple[str, ...]] = [
        ("doctor",), ("worker",), ("worker", "--role", "score"), ("gateway",),
        ("gateway", "--transport", "stdio"), ("demo", "--exit-after", "0"), ("ingest", good),
        ("ingest", "--dry-run", good), ("incidents",), ("incidents", "--output", "csv"), ("dlq",),
        ("poll", "grafana", "--config", grafana), ("kafka", "start"), ("kafka", "stop"),
        ("kafka", "status"), ("redis", "start"), ("redis", "stop"), ("redis", "status"),
    ]
    token = {"SEISMO_GRAFANA_TOKEN": "glsa_test"}
    out = [Case(f"bad values: {' '.join(a)}", a, {**BAD_VALUES, **token}) for a in settings_commands]
    out += [Case(f"missing file: {' '.join(a[:2])}", a) for a in [
        ("ingest", str(f["missing"])), ("templates", str(f["missing"])), ("detect", str(f["missing"])),
        ("poll", "grafana", "--config", str(f["missing"])), ("doctor", "--config", str(f["missing"]))]]
    out += [Case(f"missing mask rules: {a[0]}", a, {"SEISMO_MASK_RULES_FILE": str(f["missing"]), **NOWHERE})
            for a in [("worker",), ("doctor",)]]
    out += [Case(f"not UTF-8: {' '.join(a[:2])}", a, {**NOWHERE, **token}) for a in [
        ("ingest", "--dry-run", str(f["latin1_jsonl"])), ("detect", str(f["latin1_csv"])),
        ("poll", "grafana", "--config", str(f["latin1_toml"])),
        ("doctor", "--config", str(f["latin1_toml"]))]]
    latin1_rules = {"SEISMO_MASK_RULES_FILE": str(f["latin1_toml"]), **NOWHERE}
    out += [Case(f"mask rules not UTF-8: {a[0]}", a, latin1_rules) for a in [("worker",), ("doctor",)]]
    out += [Case(f"unreachable: {' '.join(a[:2])}", a, {**NOWHERE, **token}) for a in [
        ("doctor",), ("worker",), ("ingest", str(f["good_jsonl"])), ("incidents",), ("dlq",),
        ("poll", "grafana", "--config", str(f["grafana_toml"])), ("kafka", "status"), ("kafka", "stop"),
        ("kafka", "start"), ("redis", "status"), ("redis", "stop"), ("redis", "start"),
        ("demo", "--exit-after", "0")]]
    out += [Case("same out and truth", (*sim[:3], "--truth", sim[2]))]
    return out


def run(case: Case, state: Path) -> tuple[Case, subprocess.CompletedProcess[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEISMO_")}
    env.update({"SEISMO_STATE_DIR": str(state), "COLUMNS": "200", **case.env})
    proc = subprocess.run([sys.executable, "-m", "seismo", *case.args], env=env, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL, check=False)
    return case, proc


def test_no_command_prints_a_traceback_for_bad_values_missing_files_or_unreachable_services(
    tmp_path: Path,
) -> None:
    all_cases = cases(tmp_path)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda c: run(c, tmp_path / "state"), all_cases))
    problems = []
    for case, proc in results:
        output = proc.stdout + proc.stderr
        answered = any(sign in output for sign in ("error:", "FAIL", "does not answer", ": line "))
        if "Traceback" in output or "This is a bug" in output or proc.returncode == 0 or not answered:
            problems.append(f"{case.name} → exit {proc.returncode}:\n{output[-1500:]}")
    assert not problems, "\n\n".join(problems)
    assert len(results) >= 40


@pytest.mark.parametrize("variable", sorted(BAD_VALUES))
def test_each_bad_variable_alone_is_named_by_the_doctor(variable: str, tmp_path: Path) -> None:
    _, proc = run(Case(variable, ("doctor",), {variable: BAD_VALUES[variable]}), tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: {variable}={BAD_VALUES[variable]!r} is invalid")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_reader_that_stops_early_ends_the_command_quietly(tmp_path: Path) -> None:
    series = tmp_path / "s.csv"
    rows = [f"2024-05-{d:02d}T{h:02d}:{m:02d}:00Z,{m % 7}\n"
            for d in (1, 2, 3) for h in range(24) for m in range(60)]
    series.write_text("timestamp,value\n" + "".join(rows), "utf-8")  # more than a pipe's 64 KiB buffer
    with subprocess.Popen([sys.executable, "-m", "seismo", "detect", str(series)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline() == "timestamp,value,score,is_anomaly\n"
        proc.stdout.close()
        err = proc.stderr.read()
        assert proc.wait(60) != 0
    assert "Traceback" not in err
    assert "error:" not in err
