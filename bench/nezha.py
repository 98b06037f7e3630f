"""Root-cause ranking on Nezha's TrainTicket fault windows, through the real pipeline.

    .venv/bin/python bench/nezha.py --data ../shared/data/nezha

``--data`` is a folder laid out like Nezha's ``rca_data``: ``FAULTS.json`` (a list of
faults: ``inject_time``, ``inject_timestamp``, ``service``, ``minute_files``) and one
folder per day (``YYYY-MM-DD/log/HH_MM_log.csv``, ``trace/HH_MM_trace.csv``,
``metric/POD_metric.csv``).  Per day: pod logs → ``kubernetes`` ``log`` events (level
from the line, trace and span ids as attributes), spans → ``span`` events (trace id,
span id, parent), per-pod metrics from an hour before the first fault to the last fault
minute → ``metric`` events; all through ``seismo ingest`` → ``seismo worker``.  Per fault,
the incident holding most signals of its minutes (from its injection on) gives the rank of
the injected service in ``root_cause_candidates``; then ``AS@1 x AS@3 y over N faults``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.correlation import through_pipeline
from producers.ingest import parse_event
from schemas.models import Incident

METRICS = {"CpuUsageRate(%)": "cpu_usage_rate", "MemoryUsageRate(%)": "memory_usage_rate",
           "PodServerLatencyP90(s)": "server_latency_p90_s", "PodWorkload(Ops)": "workload_ops",
           "PodSuccessRate(%)": "success_rate"}
LEVELS = {"ERROR": "error", "WARN": "warning", "WARNING": "warning", "FATAL": "critical", "DEBUG": "debug"}
csv.field_size_limit(10_000_000)


def service_of(pod: str) -> str:
    """``ts-contacts-service-866bd68c97-xcqfx`` → ``ts-contacts-service``."""
    parts = pod.rsplit("-", 2)
    return parts[0] if len(parts) == 3 else pod


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def logs(path: Path) -> Iterator[dict[str, Any]]:
    for row in csv.DictReader(path.open(encoding="utf-8", errors="replace")):
        try:
            line = str(json.loads(row["Log"]).get("log", "")).strip()
        except (json.JSONDecodeError, AttributeError):
            line = row["Log"].strip()
        words = line.split(maxsplit=2)
        level = LEVELS.get(words[1], "info") if len(words) > 1 else "info"
        pod = row["PodName"]
        yield {"source": "kubernetes", "kind": "log", "timestamp": _iso(int(row["TimeUnixNano"])),
               "service": service_of(pod), "severity": level, "message": line[:2000],
               "entity": {"namespace": "ts", "pod": pod, "node": row["Node"], "container": row["Container"]},
               "attributes": {k: v for k, v in (("trace_id", row["TraceID"]), ("span_id", row["SpanID"]))
                              if v}}


def spans(path: Path) -> Iterator[dict[str, Any]]:
    for row in csv.DictReader(path.open(encoding="utf-8", errors="replace")):
        pod = row["PodName"]
        attrs = {"trace_id": row["TraceID"], "span_id": row["SpanID"],
                 "operation": row["OperationName"][:200]}
        if row["ParentID"] and row["ParentID"] != "root":
            attrs["parent_span_id"] = row["ParentID"]
        duration_ms = int(row["Duration"]) / 1000 if row["Duration"].isdigit() else 0.0
        yield {"source": "grafana", "kind": "span", "timestamp": _iso(int(row["StartTimeUnixNano"])),
               "service": service_of(pod), "severity": "info",
               "message": f"{row['OperationName'][:200]} {duration_ms:.1f}ms",
               "entity": {"namespace": "ts", "pod": pod}, "attributes": attrs}


def metrics(path: Path, start: int, end: int) -> Iterator[dict[str, Any]]:
    for row in csv.DictReader(path.open(encoding="utf-8", errors="replace")):
        ts = int(row["TimeStamp"])
        if not start <= ts <= end or "PodName" not in row:
            continue
        pod = row["PodName"]
        for column, name in METRICS.items():
            try:
                value = float(row.get(column) or "nan")
            except ValueError:
                continue
            if math.isfinite(value):
                yield {"source": "grafana", "kind": "metric", "timestamp": _iso(ts * 10**9),
                       "service": service_of(pod), "severity": "info", "message": f"{name} of {pod}",
                       "entity": {"namespace": "ts", "pod": pod}, "attributes": {"datasource": "prometheus"},
                       "metric": {"name": name, "value": value}}


def day_events(day: Path, faults: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    minutes = sorted({m for f in faults for m in f["minute_files"]})
    for minute in minutes:
        log_path, trace_path = day / "log" / f"{minute}_log.csv", day / "trace" / f"{minute}_trace.csv"
        if log_path.exists():
            out.extend(logs(log_path))
        if trace_path.exists():
            out.extend(spans(trace_path))
    first = min(int(injected_at(f).timestamp()) for f in faults)
    last = max(int(injected_at(f).timestamp()) + 60 * (1 + len(f["minute_files"])) for f in faults)
    for path in sorted((day / "metric").glob("*_metric.csv")):
        out.extend(metrics(path, first - 3600, last))
    return out


def injected_at(fault: dict[str, Any]) -> datetime:
    """``inject_time`` is UTC, as the log and metric timestamps are (``inject_timestamp`` in Nezha's
    files is that wall time read in UTC+8, eight hours off: not used)."""
    return datetime.strptime(fault["inject_time"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def rank_of(fault: dict[str, Any], incidents: list[Incident], signal_ids: set[str]
            ) -> tuple[int | None, Incident | None]:
    """Rank (1-based) of the injected service in the incident holding most signals after injection."""
    start = injected_at(fault)
    end = start + timedelta(minutes=len(fault["minute_files"]) + 1)
    best, most = None, 0
    for inc in incidents:
        if inc.merged_into:
            continue
        n = sum(1 for e in inc.evidence if start <= e.timestamp <= end and e.event_id in signal_ids)
        if n > most:
            best, most = inc, n
    if best is None:
        return None, None
    names = [c.service for c in best.root_cause_candidates]
    return (names.index(fault["service"]) + 1 if fault["service"] in names else None), best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args(argv)
    faults: list[dict[str, Any]] = json.loads((args.data / "FAULTS.json").read_text())
    by_day: dict[str, list[dict[str, Any]]] = {}
    for f in faults:
        by_day.setdefault(f["inject_time"][:10], []).append(f)
    ranks: list[int | None] = []
    for day, day_faults in sorted(by_day.items()):
        drafts = day_events(args.data / day, day_faults)
        events = sorted((parse_event(d) for d in drafts), key=lambda e: (e.timestamp, e.id))
        events = list({e.id: e for e in events}.values())
        signal_ids = {e.id for e in events if e.is_anomalous or e.severity.value == "warning"}
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "events.jsonl"
            with path.open("w", encoding="utf-8") as fh:
                for e in events:
                    fh.write(json.dumps(e.model_dump(mode="json", exclude_none=True)) + "\n")
            print(f"{day}: {len(events)} events ({len(day_faults)} faults) through the pipeline …",
                  flush=True)
            incidents, elapsed = through_pipeline(path, len(events), args.timeout)
        print(f"{day}: {len(incidents)} incidents in {elapsed:.0f} s", flush=True)
        for f in day_faults:
            rank, inc = rank_of(f, incidents, signal_ids)
            ranks.append(rank)
            where = (f"in {inc.id} {inc.services} (top: {[c.service for c in inc.root_cause_candidates[:3]]})"
                     if inc is not None else "no incident holds its signals")
            print(f"  {f['inject_time']} {f['inject_type']:<10} {f['service']}: rank {rank or '-'} {where}")
            if inc is not None and inc.root_cause_candidates:
                print(f"      reason: {inc.root_cause_candidates[0].reason[:220]}")
    n = len(ranks)
    at1 = sum(1 for r in ranks if r == 1) / max(1, n)
    at3 = sum(1 for r in ranks if r is not None and r <= 3) / max(1, n)
    print(f"AS@1 {at1:.3f} AS@3 {at3:.3f} over {n} faults")


if __name__ == "__main__":
    main()
