"""The live tools can only read: every client method they name is a read, found by reading their source."""

from __future__ import annotations

import ast
from pathlib import Path

import mcp_gateway.live

LIVE = Path(mcp_gateway.live.__file__).parent
AWS_READS = {"filter_log_events", "start_query", "get_query_results", "get_metric_data", "describe_alarms",
             "describe_alarm_history"}


def methods_called_on(module: str, receivers: set[str]) -> set[str]:
    tree = ast.parse((LIVE / module).read_text())
    return {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name) and node.value.id in receivers}


def test_kubernetes_tools_only_call_read_and_list_methods() -> None:
    called = methods_called_on("kubernetes.py", {"core", "apps", "custom"})
    assert called and all(m.startswith(("read_", "list_", "get_")) for m in called), called


def test_cloudwatch_tools_only_call_describe_get_filter_and_query_methods() -> None:
    called = methods_called_on("cloudwatch.py", {"logs", "cw"})
    assert called and called <= AWS_READS, called - AWS_READS


def test_only_grafanas_query_api_is_sent_a_post() -> None:
    for module in ("sentry.py", "grafana.py", "http.py", "kubernetes.py", "cloudwatch.py"):
        text = (LIVE / module).read_text()
        for verb in ("PUT", "PATCH", "DELETE"):
            assert f'"{verb}"' not in text, (module, verb)
    assert '"POST"' not in (LIVE / "sentry.py").read_text()
    grafana = (LIVE / "grafana.py").read_text()
    assert grafana.count('"POST"') == 1 and '"/api/ds/query", body=body' in grafana
