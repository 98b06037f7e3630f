"""Roles and what each may call.  ``viewer`` < ``investigator`` < ``admin``."""

from __future__ import annotations

from enum import StrEnum

LIVE_PREFIXES = ("k8s_", "sentry_", "cloudwatch_", "grafana_")
ADMIN_TOOLS = frozenset({"record_feedback"})


class Role(StrEnum):
    VIEWER = "viewer"
    INVESTIGATOR = "investigator"
    ADMIN = "admin"

    @property
    def level(self) -> int:
        return _LEVEL[self]


_LEVEL = {Role.VIEWER: 0, Role.INVESTIGATOR: 1, Role.ADMIN: 2}


def required_role(tool: str, live_tools: frozenset[str] | set[str]) -> Role:
    """The least role that may call ``tool``: live source tools need investigator, feedback admin."""
    if tool in ADMIN_TOOLS:
        return Role.ADMIN
    if tool in live_tools or tool.startswith(LIVE_PREFIXES):
        return Role.INVESTIGATOR
    return Role.VIEWER


def role_of(scopes: list[str]) -> Role | None:
    """The highest role named in a token's scopes (``seismo:admin`` or ``admin``), or None."""
    found = [Role(s.removeprefix("seismo:")) for s in scopes if s.removeprefix("seismo:") in _NAMES]
    return max(found, key=lambda r: r.level) if found else None


_NAMES = {r.value for r in Role}
