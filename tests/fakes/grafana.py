"""A fake Grafana HTTP API: annotations, unified-alerting alerts, dashboard search and ``/api/ds/query``.

Every request needs ``Authorization: Bearer TOKEN`` and ``X-Grafana-Org-Id: ORG``
(401 / 403 otherwise, as Grafana answers); ``/api/health`` needs neither.  Annotations are filtered by
``from``/``to`` (epoch ms, inclusive) and ``tags``, newest first, cut at ``limit``.
``frames`` maps an expression to the data frames ``/api/ds/query`` returns for it.
"""

from __future__ import annotations

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
                [f"{r[1]}_{i}" for i, r in enumerate(rows)],
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
            results = {
                q["refId"]: {"status": 200, "frames": self.frames.get(q["expr"], [])}
                for q in request.body["queries"]
            }
            return Reply(200, {"results": results})
        return Reply(404, {"message": "Not found"})
