"""Service mapping: which ``service`` an outside observation is about, the same name for every source.

Rules (all configurable in the ``mapping`` section of the poller config):

* Kubernetes: the first of ``k8s_labels`` present on the pod/deployment
  (default ``app.kubernetes.io/name``, then ``app``), else the workload name
  with the pod-template hash stripped.
* Sentry: ``sentry_projects[slug]``, else the project slug.
* CloudWatch: ``cloudwatch_log_groups`` (exact names or ``fnmatch`` globs)
  else the last path segment of the log group (``/aws/lambda/payments`` →
  ``payments``); for metrics the first of ``cloudwatch_dimensions`` present.
* Grafana: the first of ``grafana_labels`` present on an alert/series, else
  a tag ``service:NAME`` (``grafana_tag_prefix``) on an annotation/dashboard.

Every result then goes through ``aliases`` (e.g. ``payments-api`` →
``payments``) and is lower-cased; nothing found gives ``default``.
Pure functions: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase

from pydantic import BaseModel, ConfigDict

_POD_SUFFIX = re.compile(r"-(?:[a-f0-9]{8,10}-)?[a-z0-9]{5}$")


class MappingRules(BaseModel):
    """The configurable part of service mapping."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    k8s_labels: tuple[str, ...] = ("app.kubernetes.io/name", "app")
    sentry_projects: dict[str, str] = {}
    cloudwatch_log_groups: dict[str, str] = {}
    cloudwatch_dimensions: tuple[str, ...] = (
        "ServiceName", "Service", "FunctionName", "DBInstanceIdentifier"
    )
    grafana_labels: tuple[str, ...] = ("service", "app", "job")
    grafana_tag_prefix: str = "service:"
    aliases: dict[str, str] = {}
    default: str = "unknown"


class ServiceMapper:
    """Applies :class:`MappingRules`.  Each method returns a non-empty service name."""

    def __init__(self, rules: MappingRules | None = None) -> None:
        self.rules = rules or MappingRules()

    def canonical(self, name: str | None) -> str:
        """Alias and lower-case ``name``; blank gives the default service."""
        cleaned = (name or "").strip()
        if not cleaned:
            return self.rules.default
        cleaned = self.rules.aliases.get(cleaned, cleaned)
        return cleaned.lower()[:256]

    def for_k8s(self, labels: Mapping[str, str] | None, workload: str | None = None) -> str:
        """From pod or deployment labels; else the workload name (a pod name loses its hash suffix)."""
        for label in self.rules.k8s_labels:
            value = (labels or {}).get(label)
            if value:
                return self.canonical(value)
        if workload:
            return self.canonical(_POD_SUFFIX.sub("", workload))
        return self.rules.default

    def for_sentry(self, project_slug: str | None) -> str:
        if project_slug and project_slug in self.rules.sentry_projects:
            return self.canonical(self.rules.sentry_projects[project_slug])
        return self.canonical(project_slug)

    def for_cloudwatch_log_group(self, log_group: str) -> str:
        rules = self.rules.cloudwatch_log_groups
        if log_group in rules:
            return self.canonical(rules[log_group])
        for pattern, service in rules.items():
            if fnmatchcase(log_group, pattern):
                return self.canonical(service)
        return self.canonical(log_group.rstrip("/").rsplit("/", 1)[-1])

    def for_cloudwatch_dimensions(self, dimensions: Mapping[str, str], fallback: str | None = None) -> str:
        for name in self.rules.cloudwatch_dimensions:
            if dimensions.get(name):
                return self.canonical(dimensions[name])
        return self.canonical(fallback)

    def for_grafana(self, labels: Mapping[str, str] | None = None, tags: Iterable[str] = ()) -> str:
        """Labels first (alerts, series), then ``service:NAME`` tags (annotations, dashboards)."""
        for label in self.rules.grafana_labels:
            value = (labels or {}).get(label)
            if value:
                return self.canonical(value)
        prefix = self.rules.grafana_tag_prefix
        for tag in tags:
            if tag.startswith(prefix) and len(tag) > len(prefix):
                return self.canonical(tag[len(prefix):])
        return self.rules.default

    def grafana_service_tag(self, tags: Iterable[str]) -> str | None:
        """The service a tag list names, or None (for dashboards' tags)."""
        service = self.for_grafana(None, tags)
        return None if service == self.rules.default else service
