"""The file commands and the output people read (issue 14): ingest reasons, no silent data changes,
detect's input rules, the incidents table and CSV."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas.models import Incident
from tests.unit.cli_checks import assert_one_error
from tests.unit.test_cli import invoke, one_line

pytestmark = pytest.mark.usefixtures("clean_env")


# --- ingest --dry-run ----------------------------------------------------------------------------------


GOOD = {"source": "file", "kind": "log", "timestamp": "2024-05-01T12:00:00Z", "service": "pay",
        "severity": "info", "message": "ok"}


def test_ingest_dry_run_prints_each_reason_with_its_line_number(tmp_path: Path) -> None:
    events = tmp_path / "bad.jsonl"
    no_time = {k: v for k, v in GOOD.items() if k != "timestamp"}
    latin1 = json.dumps({**GOOD, "message": "caf\xe9"}, ensure_ascii=False).encode("latin-1")
    events.write_bytes(b"\n".join([json.dumps(GOOD).encode(), b"{not json", json.dumps(no_time).encode(),
                                   latin1]) + b"\n")
    result = invoke("ingest", "--dry-run", events)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "1 valid, 3 rejected"
    reasons = [line for line in result.stderr.splitlines() if ": line " in line]
    assert reasons[0].startswith(f"{events}: line 2: not valid JSON")
    assert reasons[1] == f"{events}: line 3: timestamp: Field required"
    assert reasons[2].startswith(f"{events}: line 4: not UTF-8: byte 0xe9 at column")


def test_ingest_dry_run_shows_the_first_reasons_and_says_how_to_see_all(tmp_path: Path) -> None:
    events = tmp_path / "bad.jsonl"
    events.write_text("[]\n" * 12, "utf-8")
    result = invoke("ingest", "--dry-run", events)
    assert result.exit_code == 1
    assert len([line for line in result.stderr.splitlines() if ": line " in line]) == 10
    assert "… and 2 more rejected lines: --reasons 0 prints all" in result.stderr
    everything = invoke("ingest", "--dry-run", "--reasons", "0", events)
    assert len([line for line in everything.stderr.splitlines() if ": line " in line]) == 12


# --- silent data changes --------------------------------------------------------------------------------


def test_templates_redacts_secrets_like_the_pipeline(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("login failed password=hunter2 user=bob\n", "utf-8")
    result = invoke("templates", log)
    assert result.exit_code == 0, result.stderr
    assert "hunter2" not in result.stdout
    assert "<SECRET:password>" in result.stdout


def test_templates_says_which_lines_were_not_utf8_and_writes_lf(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"Connection from 10.0.0.1 closed\ncaf\xe9 opened\n")
    result = invoke("templates", log)
    assert result.exit_code == 0, result.stderr
    assert "1 line not UTF-8 (first: line 2), read as Latin-1" in one_line(result.stderr)
    assert "café" in result.stdout
    assert "\r" not in result.stdout


def test_simulate_with_out_and_truth_the_same_file_exits_2(tmp_path: Path) -> None:
    same = tmp_path / "x.json"
    assert_one_error(invoke("simulate", "--out", same, "--truth", same), 2,
                     f"--out and --truth name the same file ({same})")
    assert not same.exists()


# --- detect input checks ---------------------------------------------------------------------------------


def series(rows: list[str], header: str = "timestamp,value") -> str:
    return "\n".join([header, *rows]) + "\n"


ROWS = [f"2024-05-01T12:{m:02d}:00Z,{10 + m % 3}" for m in range(30)]


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        (series(["2024-05-01T12:00:00Z,1", "2024-05-01T12:01:00Z,nan"]),
         ["line 3: value 'nan' is not a finite number"]),
        (series(["2024-05-01T12:00:00Z,inf"]), ["line 2: value 'inf' is not a finite number"]),
        (series(["2024-05-01T12:05:00Z,1", "2024-05-01T12:00:00Z,2"]),
         ["line 3: timestamp '2024-05-01T12:00:00Z' is earlier than line 2's", "sort the file"]),
        (series(["2024-05-01T12:00:00Z,1", "2024-05-01T12:00:00Z,2"]), ["line 3", "repeats line 2's"]),
        (series(["2024-05-01T12:00:00Z,1", "2024-05-01T12:01:00,2"]), ["line 3", "UTC offset"]),
        (series(["2024-05-01T12:00:00Z,1"], header="time,v"),
         ["expected columns timestamp,value in the first line; found 'time,v'"]),
    ],
)
def test_detect_refuses_bad_series_naming_the_line_and_what_was_found(
    tmp_path: Path, content: str, fragments: list[str]
) -> None:
    path = tmp_path / "s.csv"
    path.write_text(content, "utf-8")
    assert_one_error(invoke("detect", path), 2, str(path), *fragments)


@pytest.mark.parametrize("header", ["\ufefftimestamp,value", "Timestamp,Value", "timestamp, value"])
def test_detect_accepts_header_variants_and_keeps_timestamps_and_lf(tmp_path: Path, header: str) -> None:
    path = tmp_path / "s.csv"
    path.write_text(series(ROWS, header=header), "utf-8")
    result = invoke("detect", path)
    assert result.exit_code == 0, result.stderr
    assert "\r" not in result.stdout
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["timestamp", "value", "score", "is_anomaly"]
    assert [r[0] for r in rows[1:]] == [r.split(",")[0] for r in ROWS]
    assert "30 points, " in result.stderr


# --- output people read ----------------------------------------------------------------------------------


def incident(n: int) -> Incident:
    when = datetime(2024, 5, 1, 12, n, tzinfo=UTC)
    return Incident.model_validate({
        "id": f"inc-{n:016x}", "revision": 1, "status": "open", "severity": "critical",
        "title": "payments: 9 anomalous events, first: KeyError 'currency' in the checkout handler " * 2,
        "opened_at": when, "updated_at": when, "services": ["payments", "checkout", "ledger"],
        "sources": ["sentry", "kubernetes"], "root_cause_candidates": [], "evidence": [], "event_count": 9})


def test_the_incidents_table_keeps_ids_whole_on_one_line_at_80_columns() -> None:
    from rich.console import Console

    from seismo.render import incidents_table

    console = Console(width=80, record=True, color_system=None)
    incidents_table([incident(1), incident(2)], console)
    text = console.export_text()
    assert text.splitlines()[0].strip() == "2 incidents"
    assert "inc-0000000000000001" in text
    assert "05-01 12:01Z" in text
    body = [line for line in text.splitlines() if "inc-" in line]
    assert len(body) == 2
    assert all(len(line.rstrip()) <= 80 for line in text.splitlines())


def test_incidents_csv_and_json_are_machine_readable() -> None:
    from seismo.render import incidents_csv, incidents_json

    items = [incident(1)]
    rows = list(csv.DictReader(io.StringIO(incidents_csv(items))))
    assert rows[0]["id"] == "inc-0000000000000001"
    assert rows[0]["opened_at"] == "2024-05-01T12:01:00+00:00"
    assert "\r" not in incidents_csv(items)
    assert json.loads(incidents_json(items))[0]["id"] == "inc-0000000000000001"


def test_simulate_reports_its_stages_without_changing_the_events() -> None:
    from datetime import timedelta

    from producers.simulate import DEFAULT_START, simulate

    heard: list[tuple[str, int, int]] = []
    quiet, _ = simulate(3, 1, 5, DEFAULT_START, timedelta(minutes=40))
    loud, _ = simulate(3, 1, 5, DEFAULT_START, timedelta(minutes=40),
                       progress=lambda stage, done, total: heard.append((stage, done, total)))
    assert [e.id for e in loud] == [e.id for e in quiet]
    assert heard[0] == ("generating background traffic", 0, 0)
    assert heard[1][0] == "validating events"
    assert heard[1][2] >= len(quiet)
