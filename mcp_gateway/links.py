"""Deep links from an event into its source's UI, when the gateway knows that UI's base URL.

Pure functions of an event's source, entity and attributes; None when nothing fits.  Sentry's
own ``permalink`` attribute wins over a link built from the base URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from mcp_gateway.settings import GatewaySettings


@dataclass(frozen=True)
class LinkBases:
    sentry: str | None = None
    grafana: str | None = None
    kubernetes: str | None = None
    cloudwatch_region: str | None = None

    @classmethod
    def from_settings(cls, s: GatewaySettings) -> LinkBases:
        def strip(url: str | None) -> str | None:
            return url.rstrip("/") if url else None

        return cls(
            strip(s.sentry_url), strip(s.grafana_url), strip(s.kubernetes_dashboard_url), s.cloudwatch_region
        )


def deep_link(
    bases: LinkBases, source: str, entity: dict[str, str], attributes: dict[str, str]
) -> str | None:
    """The URL of the event's object in its source UI, or None."""
    if source == "sentry":
        if attributes.get("permalink", "").startswith("https://"):
            return attributes["permalink"]
        if bases.sentry and attributes.get("issue_id"):
            return f"{bases.sentry}/issues/{quote(attributes['issue_id'])}/"
    elif source == "grafana" and bases.grafana:
        uid = attributes.get("dashboard_uid")
        if uid:
            panel = attributes.get("panel_id")
            return f"{bases.grafana}/d/{quote(uid)}" + (f"?viewPanel={quote(panel)}" if panel else "")
    elif source == "kubernetes" and bases.kubernetes:
        ns, pod = entity.get("namespace"), entity.get("pod")
        if ns and pod:
            return f"{bases.kubernetes}/#/pod/{quote(ns)}/{quote(pod)}?namespace={quote(ns)}"
        if ns:
            return f"{bases.kubernetes}/#/workloads?namespace={quote(ns)}"
    elif source == "cloudwatch" and bases.cloudwatch_region:
        region = entity.get("region") or bases.cloudwatch_region
        console = f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        if attributes.get("alarm"):
            return f"{console}#alarmsV2:alarm/{quote(attributes['alarm'], safe='')}"
        if entity.get("log_group"):
            return f"{console}#logsV2:log-groups/log-group/{quote(entity['log_group'], safe='')}"
    return None
