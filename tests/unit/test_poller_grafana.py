"""Grafana poller against the fake Grafana API: mapping, paging, faults, restart."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from producers.config import GrafanaConfig, GrafanaQuery, PollersFile
from producers.mapping import ServiceMapper
from producers.poll import Wiring, open_poller
from producers.sources.grafana import alert_event, annotation_event
from schemas.models import Entity, Event, EventKind, Metric, Severity, Source
from tests.fakes import decoded_dead_letters, decoded_events, memory_wiring
from tests.fakes.grafana import FakeGrafana, loki_frame, make_alert, make_annotation, prometheus_frame

ENV = {"SEISMO_GRAFANA_TOKEN": "glsa_test"}
NOW_MS = int(datetime(2024, 5, 1, 12, 0, tzinfo=UTC).timestamp() * 1000)


def config(url: str, **overrides: object) -> PollersFile:
    section = {"base_url": url, "org_id": 1, "annotations": False, "alerts": False, **overrides}
    return PollersFile(grafana=GrafanaConfig.model_validate(section))


async def cycles(cfg: PollersFile, wiring: Wiring, n: int = 1) -> None:
    async with open_poller("grafana", cfg, wiring) as poller:
        for _ in range(n):
            await poller.cycle()


def test_a_deploy_annotation_becomes_the_exact_deploy_event() -> None:
    item = make_annotation(17, NOW_MS - 60_000, "Deployed payments 2.4.1", ["deploy", "service:payments"])
    cfg = GrafanaConfig(base_url="http://g")
    assert annotation_event(item, cfg, ServiceMapper(), {}) == Event(
        id="grafana:annotation:17",
        source=Source.GRAFANA,
        kind=EventKind.DEPLOY,
        timestamp=datetime(2024, 5, 1, 11, 59, tzinfo=UTC),
        service="payments",
        severity=Severity.INFO,
        message="Deployed payments 2.4.1",
        attributes={
            "annotation_id": "17",
            "tags": "deploy,service:payments",
            "login": "ci-bot",
            "time_end": str(NOW_MS - 60_000),
        },
    )


def test_an_annotation_without_a_service_tag_takes_its_dashboards_service_tag() -> None:
    item = make_annotation(3, NOW_MS, "Feature flag flipped", ["flag"], dashboardUID="dash-1")
    event = annotation_event(
        item,
        GrafanaConfig(base_url="http://g"),
        ServiceMapper(),
        {"dash-1": ["team:core", "service:checkout"]},
    )
    assert (event.kind, event.service) == (EventKind.ANNOTATION, "checkout")


def test_a_firing_alert_becomes_the_exact_alert_event() -> None:
    alert = make_alert(
        "6f1a",
        "2024-05-01T11:58:00Z",
        {"alertname": "PaymentsErrorRate", "service": "payments", "severity": "critical"},
        "5xx ratio 12% > 2%",
    )
    assert alert_event(alert, ServiceMapper()) == Event(
        id="grafana:alert:6f1a:2024-05-01T11:58:00Z",
        source=Source.GRAFANA,
        kind=EventKind.ALERT,
        timestamp=datetime(2024, 5, 1, 11, 58, tzinfo=UTC),
        service="payments",
        severity=Severity.CRITICAL,
        message="[FIRING] PaymentsErrorRate: 5xx ratio 12% > 2%",
        attributes={
            "fingerprint": "6f1a",
            "generator_url": "http://grafana.local/alerting/grafana/rule-1/view",
            "label.__alert_rule_uid__": "rule-1",
            "label.grafana_folder": "prod",
            "label.alertname": "PaymentsErrorRate",
            "label.service": "payments",
            "label.severity": "critical",
        },
    )


def test_annotations_are_paged_by_time_sent_with_token_and_org_and_read_once() -> None:
    with FakeGrafana() as fake:
        fake.annotations = [
            make_annotation(i, NOW_MS - 600_000 + 1000 * (i // 2), f"note {i}", ["service:web"])
            for i in range(1, 8)
        ]
        wiring, publisher, cursors, _, _ = memory_wiring(ENV)
        cfg = config(fake.url, annotations=True, dashboards=False)

        async def run() -> None:
            async with open_poller("grafana", cfg, wiring) as poller:
                poller.streams[0].page = 3  # type: ignore[attr-defined]
                await poller.cycle()
                await poller.cycle()

        asyncio.run(run())
        [first, *_] = fake.calls("/api/annotations")
    assert (first.headers["authorization"], first.headers["x-grafana-org-id"]) == ("Bearer glsa_test", "1")
    ids = sorted(int(e.attributes["annotation_id"]) for e in decoded_events(publisher))
    assert ids == [1, 2, 3, 4, 5, 6, 7]
    assert cursors.load("grafana/annotations") == {
        "since": NOW_MS - 597_000,
        "since_ids": [6, 7],
        "to": None,
        "to_ids": [],
        "newest": None,
        "newest_ids": [],
    }


def test_a_firing_alert_is_published_once_while_it_keeps_firing() -> None:
    with FakeGrafana() as fake:
        fake.alerts = [make_alert("6f1a", "2024-05-01T11:58:00Z", {"alertname": "A", "app": "payments"}, "x")]
        wiring, publisher, cursors, _, _ = memory_wiring(ENV)
        asyncio.run(cycles(config(fake.url, alerts=True), wiring, 3))
    assert [e.service for e in decoded_events(publisher)] == ["payments"]
    assert cursors.load("grafana/alerts") == {"firing": ["6f1a@2024-05-01T11:58:00Z"]}


def test_prometheus_and_loki_frames_become_metric_and_log_events_inside_the_window() -> None:
    prom = GrafanaQuery(
        name="http_errors",
        datasource_uid="prom",
        kind="prometheus",
        expr='sum by (service) (rate(http_requests_total{code=~"5.."}[1m]))',
        unit="1/s",
    )
    loki = GrafanaQuery(
        name="payments_errors", datasource_uid="loki", kind="loki", expr='{app="payments"} |= "ERROR"'
    )
    until = NOW_MS - 60_000
    with FakeGrafana() as fake:
        fake.frames[prom.expr] = [
            prometheus_frame(
                {"service": "payments"}, [(until - 600_000, 9.0), (until - 60_000, 0.5), (until, 1.25)]
            )
        ]
        fake.frames[loki.expr] = [
            loki_frame(
                [
                    (
                        {"app": "payments", "pod": "payments-1"},
                        until - 1000,
                        "ERROR charge failed: KeyError 'currency'",
                    )
                ]
            )
        ]
        wiring, publisher, cursors, _, _ = memory_wiring(ENV)
        asyncio.run(cycles(config(fake.url, queries=[prom.model_dump(), loki.model_dump()]), wiring))
        [call, _] = fake.calls("/api/ds/query")
    assert call.body["from"] == str(until - 600_000)
    events = decoded_events(publisher)
    assert [(e.kind, e.metric) for e in events[:2]] == [
        (EventKind.METRIC, Metric(name="http_errors", value=0.5, unit="1/s")),
        (EventKind.METRIC, Metric(name="http_errors", value=1.25, unit="1/s")),
    ]
    log = events[2]
    assert (log.kind, log.service, log.severity, log.entity) == (
        EventKind.LOG,
        "payments",
        Severity.ERROR,
        Entity(pod="payments-1"),
    )
    assert cursors.load("grafana/query:http_errors") == {"to": until}


def test_a_malformed_alerts_response_is_dead_lettered_and_the_next_cycle_publishes() -> None:
    with FakeGrafana() as fake:
        fake.alerts = [
            make_alert("1", "2024-05-01T11:58:00Z", {"alertname": "A", "service": "web"}, "x"),
            {"labels": "not a dict"},
        ]
        fake.malformed("/api/alertmanager/")
        wiring, publisher, _, _, _ = memory_wiring(ENV)
        asyncio.run(cycles(config(fake.url, alerts=True), wiring, 2))
    reasons = [d.error_type for d in decoded_dead_letters(publisher)]
    assert reasons == ["invalid_json", "invalid_payload"]
    assert [e.service for e in decoded_events(publisher)] == ["web"]


def test_a_429_on_a_query_is_honoured_and_the_window_is_still_read() -> None:
    q = GrafanaQuery(name="up", datasource_uid="prom", kind="prometheus", expr="up")
    with FakeGrafana() as fake:
        fake.frames["up"] = [prometheus_frame({"job": "checkout"}, [(NOW_MS - 60_000, 1.0)])]
        fake.fail("/api/ds/query", 429, headers={"Retry-After": "12"})
        wiring, publisher, _, clock, _ = memory_wiring(ENV)
        asyncio.run(cycles(config(fake.url, queries=[q.model_dump()]), wiring))
    assert 12.0 in clock.sleeps
    assert [e.service for e in decoded_events(publisher)] == ["checkout"]
