"""`seismo demo` end to end: it feeds its scenario, prints incidents and the MCP URL, and stops cleanly."""

from __future__ import annotations

import pytest

from tests.kafka_utils import Env, free_port

pytestmark = pytest.mark.kafka


def test_demo_prints_incidents_of_both_faulty_services_and_the_mcp_endpoint(seismo_env: Env) -> None:
    port = free_port()
    seismo_env.extra["COLUMNS"] = "200"
    out = seismo_env.seismo("demo", "--port", str(port), "--exit-after", "1", timeout=240)
    text = out.stdout
    assert "2 incident(s)" in text, text
    assert "payments" in text and "inventory" in text
    assert f"http://127.0.0.1:{port}/mcp" in text
    assert "demo stopped" in text
