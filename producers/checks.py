"""Pre-flight checks of the sources in a poller config: credentials, scopes and reachability.

``seismo doctor --config FILE`` prints one :class:`CheckResult` per configured
source (per context for Kubernetes).  A check makes the cheapest authenticated
read the poller itself will need, once, with a short timeout and no retries,
through the production client builders and config loaders, and says what to
fix when it fails:

* Sentry — ``GET /api/0/organizations/{org}/`` (``org:read``), then per project
  ``GET /api/0/projects/{org}/{project}/`` (``project:read``) and its issues with
  ``limit=1`` (``event:read``);
* Grafana — ``GET /api/health``, then ``GET /api/search?limit=1`` with the
  service-account token and ``X-Grafana-Org-Id``;
* Kubernetes and CloudWatch — :mod:`producers.checks_platform`.

No check raises: an unexpected error becomes a failed result naming it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import httpx

from producers.config import GrafanaConfig, PollersFile, PollSettings, SentryConfig, resolve_token
from producers.sources import build_client

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 5.0
SENTRY_SCOPES = "org:read, project:read, event:read"


@dataclass(frozen=True)
class CheckResult:
    """One line of ``seismo doctor``: what was checked, whether it passed, and the detail or the fix."""

    name: str
    ok: bool
    detail: str


def run_checks(config: PollersFile, environ: Mapping[str, str],
               timeout_s: float = DEFAULT_TIMEOUT_S) -> list[CheckResult]:
    """Check every source ``config`` has a section for, concurrently; blocks about ``timeout_s`` per call."""
    return asyncio.run(check_sources(config, environ, timeout_s))


async def check_sources(config: PollersFile, environ: Mapping[str, str],
                        timeout_s: float = DEFAULT_TIMEOUT_S) -> list[CheckResult]:
    """:func:`run_checks` for callers already inside an event loop."""
    from producers.checks_platform import check_cloudwatch, check_kubernetes

    jobs: list[tuple[str, Callable[[], Awaitable[list[CheckResult]]]]] = []
    if (sentry := config.sentry) is not None:
        jobs.append(("sentry", lambda: _one(check_sentry(sentry, environ, timeout_s))))
    if (grafana := config.grafana) is not None:
        jobs.append(("grafana", lambda: _one(check_grafana(grafana, environ, timeout_s))))
    if (kubernetes := config.kubernetes) is not None:
        jobs.append(("kubernetes", lambda: asyncio.to_thread(check_kubernetes, kubernetes, timeout_s)))
    if (cloudwatch := config.cloudwatch) is not None:
        jobs.append(("cloudwatch", lambda: _one(asyncio.to_thread(check_cloudwatch, cloudwatch, timeout_s))))
    lines = await asyncio.gather(*(_guarded(name, job) for name, job in jobs))
    return [result for group in lines for result in group]


async def _one(check: Awaitable[CheckResult]) -> list[CheckResult]:
    return [await check]


async def _guarded(name: str, job: Callable[[], Awaitable[list[CheckResult]]]) -> list[CheckResult]:
    """Run one source's check; a bug or an error nobody expected becomes a failed line, never an exception."""
    try:
        return await job()
    except Exception as exc:  # the doctor must print a line for every source, whatever happened
        log.debug("check of %s failed unexpectedly", name, exc_info=True)
        return [CheckResult(name, False, f"check failed unexpectedly: {type(exc).__name__}: {exc}")]


def token_hint(section: PollSettings) -> str:
    """Where the token comes from, for messages: the env var, or the config file."""
    if section.token is not None:
        return "the token in the config file"
    return f"the token in ${section.token_env}" if section.token_env else "the token"


async def _get(client: httpx.AsyncClient, path: str, **params: str | int) -> httpx.Response | str:
    """The response, or why none came (unreachable, timed out)."""
    try:
        return await client.get(path, params=params)
    except httpx.TimeoutException as exc:
        return f"{client.base_url} timed out ({type(exc).__name__}): check base_url and the network"
    except httpx.TransportError as exc:
        reason = f"{type(exc).__name__}: {exc}"
        return f"{client.base_url} is unreachable ({reason}): check base_url and the network"


async def check_sentry(cfg: SentryConfig, environ: Mapping[str, str],
                       timeout_s: float = DEFAULT_TIMEOUT_S) -> CheckResult:
    """The organization and each project readable with the configured token (read scopes only)."""
    token, org, hint = resolve_token(cfg, environ), cfg.organization, token_hint(cfg)
    if token is None:
        return CheckResult("sentry", False, f"no token: set ${cfg.token_env} to a Sentry token with "
                                            f"scopes {SENTRY_SCOPES}")
    steps: list[tuple[str, dict[str, str | int], str, str]] = [
        (f"/api/0/organizations/{org}/", {}, "org:read", f"organization {org!r}")
    ]
    for project in cfg.projects:
        steps += [(f"/api/0/projects/{org}/{project}/", {}, "project:read", f"project {org}/{project}"),
                  (f"/api/0/projects/{org}/{project}/issues/", {"limit": 1}, "event:read",
                   f"issues of {org}/{project}")]
    async with build_client(cfg.base_url, token, timeout=min(cfg.timeout_s, timeout_s)) as client:
        for path, params, scope, what in steps:
            response = await _get(client, path, **params)
            if isinstance(response, str):
                return CheckResult("sentry", False, response)
            status = response.status_code
            if status == 401:
                return CheckResult("sentry", False, f"{hint} was rejected (401 on {path}): create a new "
                                                    f"token with scopes {SENTRY_SCOPES}")
            if status == 403:
                return CheckResult("sentry", False, f"{hint} lacks scope {scope} (403 on {path}): "
                                                    f"grant {SENTRY_SCOPES}")
            if status == 404:
                return CheckResult("sentry", False, f"{what} not found (404 on {path}): check "
                                                    "organization and projects in the config")
            if status >= 300:
                return CheckResult("sentry", False, f"GET {path} answered {status}: {response.text[:120]}")
    return CheckResult("sentry", True, f"{cfg.base_url}: organization {org} and {len(cfg.projects)} "
                                       f"project(s) readable ({SENTRY_SCOPES})")


async def check_grafana(cfg: GrafanaConfig, environ: Mapping[str, str],
                        timeout_s: float = DEFAULT_TIMEOUT_S) -> CheckResult:
    """``/api/health`` answers, and the service-account token may search dashboards in ``org_id``."""
    token, hint = resolve_token(cfg, environ), token_hint(cfg)
    headers = {"X-Grafana-Org-Id": str(cfg.org_id)}
    async with build_client(cfg.base_url, token, headers, min(cfg.timeout_s, timeout_s)) as client:
        health = await _get(client, "/api/health")
        if isinstance(health, str):
            return CheckResult("grafana", False, health)
        if health.status_code != 200:
            return CheckResult("grafana", False, f"{cfg.base_url}/api/health answered {health.status_code}: "
                                                 "Grafana is up but unhealthy (its database?)")
        version = _field(health, "version")
        if token is None:
            return CheckResult("grafana", False, f"no token: set ${cfg.token_env} to a token of a service "
                                                 "account with the Viewer role")
        search = await _get(client, "/api/search", limit=1)
        if isinstance(search, str):
            return CheckResult("grafana", False, search)
        status = search.status_code
        if status == 401:
            return CheckResult("grafana", False, f"{hint} was rejected (401): add a new token to the "
                                                 "Viewer service account")
        if status == 403:
            return CheckResult("grafana", False, f"{hint} may not read org {cfg.org_id} (403): give the "
                                                 f"service account the Viewer role in org {cfg.org_id}, "
                                                 "or fix org_id")
        if status >= 300:
            return CheckResult("grafana", False, f"GET /api/search answered {status}: {search.text[:120]}")
    return CheckResult("grafana", True, f"{cfg.base_url} (Grafana {version}): token accepted in org "
                                        f"{cfg.org_id}")


def _field(response: httpx.Response, name: str) -> str:
    try:
        body = response.json()
    except ValueError:
        return "?"
    return str(body.get(name, "?")) if isinstance(body, dict) else "?"
