"""A fake Grafana HTTP API: annotations, unified-alerting alerts, dashboard search and ``/api/ds/query``.

Every request needs ``Authorization: Bearer TOKEN`` and ``X-Grafana-Org-Id: ORG``
(401 / 403 otherwise, as Grafana answers); ``/api/health`` needs neither.  Annotations are filtered by
``from``/``to`` (epoch ms, inclusive) and ``tags``, newest first, cut at ``limit``.
``frames`` maps an expression to the data frames ``/api/ds/query`` returns for it.

Failure shapes of ``/api/ds/query`` (Grafana's ``pkg/api/metrics.go``: ``QueryMetricsV2``,
``handleQueryMetricsError`` and ``toJsonStreamingResponse``; the per-query object is the
plugin SDK's ``backend.DataResponse`` as ``@grafana/runtime``'s ``DataResponse`` reads it):

* ``query_errors[expr] = (status, message)``: that query's result is
  ``{"status": status, "frames": [], "error": message, "errorSource": "downstream"}``;
  the whole response is HTTP 400 (207 when ``multi_status``, Grafana's
  ``datasourceQueryMultiStatus`` feature), the other queries' results unchanged.
* ``datasource_errors[uid] = 403 | 404``: ``{"message": "Access denied to data source"}`` /
  ``{"message": "Data source not found"}`` for the whole request.

Loki (``loki_lines[expr]`` = rows ``(labels, time_ms, line)``): like Loki's ``query_range``
(https://grafana.com/docs/loki/latest/reference/loki-http-api/), rows with
``from <= t < to`` (start inclusive, end exclusive), at most ``maxLines`` of them (Loki's
``limit``), the oldest with ``direction: forward`` and the newest otherwise (Grafana's
default, backward), as one Grafana 10+ log frame whose ``id`` is stable per line.
"""

from __future__ import annotations

import hashlib
from typing import Any

from tests.fakes import FakeHttpServer, Reply, Request


def make_annotation(ann_id: int, time_ms: int, text: str, tags: list[str], **extra: Any) -> dict[str, Any]:
    """An annotation as ``GET /api/annotations`` lists it."""
    return {
        "id": ann_id,
        "alertId": 0,
        "alertName": "",
        "dashboardId": 0,
        "dashboardUID": "",
        "panelId": 0,
        "userId": 1,
        "newState": "",
        "prevState": "",
        "created": time_ms,
        "updated": time_ms,
        "time": time_ms,
        "timeEnd": time_ms,
        "text": text,
        "tags": tags,
        "login": "ci-bot",
        "email": "ci@example.com",
        "avatarUrl": "",
        "data": {},
        **extra,
    }


def make_alert(fingerprint: str, starts_at: str, labels: dict[str, str], summary: str) -> dict[str, Any]:
    """An alert as ``GET /api/alertmanager/grafana/api/v2/alerts`` lists it (``gettableAlert``)."""
    return {
        "labels": {"__alert_rule_uid__": "rule-1", "grafana_folder": "prod", **labels},
        "annotations": {"summary": summary},
        "startsAt": starts_at,
        "endsAt": "2024-05-01T12:04:00Z",
        "updatedAt": starts_at,
        "fingerprint": fingerprint,
        "status": {"state": "active", "silencedBy": [], "inhibitedBy": []},
        "receivers": [{"name": "oncall"}],
        "generatorURL": "http://grafana.local/alerting/grafana/rule-1/view",
    }


def prometheus_frame(labels: dict[str, str], points: list[tuple[int, float]]) -> dict[str, Any]:
    return {
        "schema": {
            "name": "",
            "refId": "A",
            "meta": {"type": "timeseries-multi", "typeVersion": [0, 1]},
            "fields": [
                {
                    "name": "Time",
                    "type": "time",
                    "typeInfo": {"frame": "time.Time"},
                    "config": {"interval": 60000},
                },
                {
                    "name": "Value",
                    "type": "number",
                    "typeInfo": {"frame": "float64"},
                    "labels": labels,
                    "config": {"displayNameFromDS": ""},
                },
            ],
        },
        "data": {"values": [[t for t, _ in points], [v for _, v in points]]},
    }


def loki_frame(rows: list[tuple[dict[str, str], int, str]]) -> dict[str, Any]:
    """The Grafana 10+ Loki frame: labels, Time, Line, tsNs, id."""
    return {
        "schema": {
            "refId": "A",
            "meta": {"type": "log-lines", "typeVersion": [0, 0]},
            "fields": [
                {"name": "labels", "type": "other", "typeInfo": {"frame": "json.RawMessage"}},
                {"name": "Time", "type": "time", "typeInfo": {"frame": "time.Time"}},
                {"name": "Line", "type": "string", "typeInfo": {"frame": "string"}},
                {"name": "tsNs", "type": "string", "typeInfo": {"frame": "string"}},
                {"name": "id", "type": "string", "typeInfo": {"frame": "string"}},
            ],
        },
        "data": {
            "values": [
                [r[0] for r in rows],
                [r[1] for r in rows],
                [r[2] for r in rows],
                [str(r[1] * 1_000_000) for r in rows],
                [f"{r[1] * 1_000_000}_{hashlib.sha1(r[2].encode()).hexdigest()[:8]}" for r in rows],
            ]
        },
    }


class FakeGrafana(FakeHttpServer):
    def __init__(self, token: str = "glsa_test", org_id: int = 1) -> None:
        super().__init__()
        self.token, self.org_id = token, org_id
        self.annotations: list[dict[str, Any]] = []
        self.alerts: list[dict[str, Any]] = []
        self.dashboards: list[dict[str, Any]] = []
        self.frames: dict[str, list[dict[str, Any]]] = {}
        self.loki_lines: dict[str, list[tuple[dict[str, str], int, str]]] = {}
        self.query_errors: dict[str, tuple[int, str]] = {}
        self.datasource_errors: dict[str, int] = {}
        self.multi_status = False

    def handle(self, request: Request) -> Reply:
        if request.path == "/api/health":  # served without authentication, as Grafana does
            return Reply(200, {"commit": "03f502a94d", "database": "ok", "version": "11.1.0"})
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return Reply(401, {"message": "Unauthorized"})
        if request.headers.get("x-grafana-org-id") != str(self.org_id):
            return Reply(403, {"message": "You'll need additional permissions to perform this action."})
        if request.path == "/api/annotations":
            start, end = int(request.param("from") or 0), int(request.param("to") or 2**62)
            tags = set(request.query.get("tags", []))
            items = [a for a in self.annotations if start <= a["time"] <= end and tags <= set(a["tags"])]
            items.sort(key=lambda a: (a["time"], a["id"]), reverse=True)
            return Reply(200, items[: int(request.param("limit") or 100)])
        if request.path == "/api/alertmanager/grafana/api/v2/alerts":
            return Reply(200, self.alerts)
        if request.path == "/api/search":
            return Reply(200, self.dashboards)
        if request.path == "/api/ds/query" and request.method == "POST":
            return self._query(request.body)
        return Reply(404, {"message": "Not found"})

    def _query(self, body: dict[str, Any]) -> Reply:
        for q in body["queries"]:
            denied = self.datasource_errors.get(q["datasource"]["uid"])
            if denied == 403:
                return Reply(403, {"message": "Access denied to data source", "traceID": ""})
            if denied == 404:
                return Reply(404, {"message": "Data source not found", "traceID": ""})
        results: dict[str, Any] = {}
        for q in body["queries"]:
            if q["expr"] in self.query_errors:
                status, message = self.query_errors[q["expr"]]
                results[q["refId"]] = {"status": status, "frames": [], "error": message,
                                       "errorSource": "downstream"}
            elif q["expr"] in self.loki_lines:
                results[q["refId"]] = {"status": 200, "frames": [self._loki(q, body)]}
            else:
                results[q["refId"]] = {"status": 200, "frames": self.frames.get(q["expr"], [])}
        failed = any("error" in r for r in results.values())
        return Reply((207 if self.multi_status else 400) if failed else 200, {"results": results})

    def _loki(self, q: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        start, end = int(body["from"]), int(body["to"])
        rows = sorted((r for r in self.loki_lines[q["expr"]] if start <= r[1] < end), key=lambda r: r[1])
        limit = int(q.get("maxLines") or 1000)
        rows = rows[:limit] if q.get("direction") == "forward" else rows[-limit:]
        return loki_frame(rows)
