"""The poller's counters over HTTP (``seismo poll --metrics-port``) and its one-line shutdown summary."""

from __future__ import annotations

import asyncio

import httpx

from producers.metrics import RecordingMetrics
from producers.metrics_http import MetricsServer

LABELS = {"source": "sentry", "stream": "releases"}


def test_get_metrics_serves_the_current_counters_as_prometheus_text_on_a_real_port() -> None:
    metrics = RecordingMetrics()
    metrics.increment("seismo_poller_published_total", 3, LABELS)

    async def scrape_twice() -> tuple[httpx.Response, httpx.Response]:
        async with MetricsServer(metrics, "127.0.0.1", 0) as server, httpx.AsyncClient(timeout=5) as client:
            first = await client.get(server.url)
            metrics.increment("seismo_poller_published_total", 2, LABELS)
            metrics.gauge("seismo_poller_lag_seconds", 4.5, LABELS)
            return first, await client.get(f"http://127.0.0.1:{server.port}/metrics")

    first, second = asyncio.run(scrape_twice())
    assert first.status_code == 200
    assert first.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert first.text == (
        "# TYPE seismo_poller_published_total counter\n"
        'seismo_poller_published_total{source="sentry",stream="releases"} 3\n'
    )
    assert 'seismo_poller_published_total{source="sentry",stream="releases"} 5' in second.text
    assert 'seismo_poller_lag_seconds{source="sentry",stream="releases"} 4.5' in second.text


def test_other_paths_are_404_and_other_methods_405() -> None:
    async def ask() -> tuple[int, int, int]:
        async with MetricsServer(RecordingMetrics()) as server, httpx.AsyncClient(timeout=5) as client:
            base = f"http://127.0.0.1:{server.port}"
            return ((await client.get(f"{base}/")).status_code,
                    (await client.post(f"{base}/metrics")).status_code,
                    (await client.head(f"{base}/metrics")).status_code)

    assert asyncio.run(ask()) == (404, 405, 200)


def test_a_closed_server_releases_its_port() -> None:
    async def rebind() -> tuple[int, int]:
        async with MetricsServer(RecordingMetrics()) as first:
            port = first.port
        async with MetricsServer(RecordingMetrics(), port=port) as second:
            return port, second.port

    port, again = asyncio.run(rebind())
    assert again == port


def test_the_summary_is_one_line_of_totals_over_every_stream() -> None:
    metrics = RecordingMetrics()
    assert metrics.summary() == ("polled 0, published 0, deduped 0, dead letters 0, errors 0, retries 0, "
                                 "object errors 0, parked 0, max lag n/a")
    metrics.increment("seismo_poller_polled_total", 5, LABELS)
    metrics.increment("seismo_poller_polled_total", 2, {"source": "sentry", "stream": "issues:pay"})
    metrics.increment("seismo_poller_published_total", 6, LABELS)
    metrics.increment("seismo_poller_deduped_total", 1, LABELS)
    metrics.gauge("seismo_poller_lag_seconds", 12.34, LABELS)
    metrics.gauge("seismo_poller_lag_seconds", 3.0, {"source": "sentry", "stream": "issues:pay"})
    assert metrics.summary() == ("polled 7, published 6, deduped 1, dead letters 0, errors 0, retries 0, "
                                 "object errors 0, parked 0, max lag 12.3s")
