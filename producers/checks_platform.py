"""Pre-flight checks of the SDK-based sources: Kubernetes (per context) and CloudWatch.

Both are blocking (the official clients are), one attempt each with short
timeouts; :func:`producers.checks.check_sources` runs them in worker threads.

* Kubernetes — per configured context, through the poller's own kubeconfig
  loader: ``list pods limit=1`` in each configured namespace (all namespaces
  when none is configured).  403 points at the ClusterRole in docs/sources.md.
* CloudWatch — the poller's boto3 session (``profile``, ``role_arn``): STS
  ``GetCallerIdentity``, then the cheapest call of each configured feed:
  ``logs:DescribeLogGroups`` (limit 1), ``cloudwatch:DescribeAlarms`` (MaxRecords 1),
  ``cloudwatch:DescribeAlarmHistory`` and ``cloudwatch:GetMetricData`` (one series, two periods).
  AccessDenied names the missing IAM action.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from producers.checks import CheckResult
from producers.config import ConfigError, KubernetesConfig

if TYPE_CHECKING:
    from producers.sources.cloudwatch import CloudWatchSettings

RBAC_FIX = ("bind the seismo-poller ClusterRole from docs/sources.md (get/list/watch on pods, pods/log, "
            "events, deployments; get/list on metrics.k8s.io pods)")

ACCESS_DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
                           "UnauthorizedAccess", "403"})
BAD_CREDENTIALS = frozenset({"InvalidClientTokenId", "UnrecognizedClientException", "ExpiredToken",
                             "ExpiredTokenException", "SignatureDoesNotMatch", "InvalidAccessKeyId",
                             "InvalidSignatureException"})
IAM_ACTIONS = {"AssumeRole": "sts:AssumeRole", "GetCallerIdentity": "sts:GetCallerIdentity",
               "DescribeLogGroups": "logs:DescribeLogGroups", "DescribeAlarms": "cloudwatch:DescribeAlarms",
               "DescribeAlarmHistory": "cloudwatch:DescribeAlarmHistory",
               "GetMetricData": "cloudwatch:GetMetricData"}


def check_kubernetes(cfg: KubernetesConfig, timeout_s: float = 5.0) -> list[CheckResult]:
    """One result per configured context (the current context when none is configured)."""
    from kubernetes.config.config_exception import ConfigException  # type: ignore[import-untyped]

    from producers.sources.kubernetes import api_clients

    contexts: tuple[str | None, ...] = (None,) if cfg.in_cluster or not cfg.contexts else cfg.contexts
    results = []
    for context in contexts:
        one = cfg if context is None else cfg.model_copy(update={"contexts": (context,)})
        label = f"k8s {context or ('in-cluster' if cfg.in_cluster else 'current')}"
        try:
            clients = api_clients(one)
        except (ConfigException, OSError, KeyError, TypeError, ValueError) as exc:
            where = "in-cluster config" if cfg.in_cluster else f"kubeconfig {cfg.kubeconfig or '(default)'}"
            results.append(CheckResult(label, False, f"cannot load {where}: {exc}: check kubeconfig, "
                                                     "contexts and in_cluster in the config"))
            continue
        for name, api_client in clients:
            try:
                results.append(_check_context(name, api_client, cfg, timeout_s))
            finally:
                api_client.close()
    return results


def _check_context(name: str, api_client: Any, cfg: KubernetesConfig, timeout_s: float) -> CheckResult:
    import urllib3
    from kubernetes import client  # type: ignore[import-untyped]
    from kubernetes.client.rest import ApiException  # type: ignore[import-untyped]

    core, host = client.CoreV1Api(api_client), api_client.configuration.host
    label = f"k8s {name}"
    namespaces = cfg.namespaces or ("*",)
    for ns in namespaces:
        where = "all namespaces" if ns == "*" else f"namespace {ns}"
        try:
            if ns == "*":
                core.list_pod_for_all_namespaces(limit=1, _preload_content=False, _request_timeout=timeout_s)
            else:
                core.list_namespaced_pod(ns, limit=1, _preload_content=False, _request_timeout=timeout_s)
        except ApiException as exc:
            if exc.status == 401:
                return CheckResult(label, False, f"{host} rejected the credentials of context {name} (401): "
                                                 "refresh the kubeconfig user's token or certificate")
            if exc.status == 403:
                return CheckResult(label, False, f"RBAC forbids listing pods in {where} (403): {RBAC_FIX}")
            if exc.status == 404 and ns != "*":
                return CheckResult(label, False, f"{where} does not exist (404): fix namespaces")
            return CheckResult(label, False, f"listing pods in {where} answered {exc.status} {exc.reason}")
        except urllib3.exceptions.HTTPError as exc:
            return CheckResult(label, False, f"API server {host} is unreachable ({type(exc).__name__}): "
                                             "check the kubeconfig's server URL and the network")
    shown = ", ".join("all namespaces" if ns == "*" else ns for ns in namespaces)
    return CheckResult(label, True, f"{host}: pods listable in {shown}")


def check_cloudwatch(section: Mapping[str, Any], timeout_s: float = 5.0) -> CheckResult:
    """The identity the poller runs as, and each configured feed's cheapest read."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        ProfileNotFound,
        ReadTimeoutError,
    )

    from producers.sources.cloudwatch import client_config, make_clients, make_session, settings_from_section

    try:
        settings = settings_from_section(section)
    except ConfigError as exc:
        return CheckResult("cloudwatch", False, str(exc))
    target = settings.endpoint_url or f"AWS in {settings.region}"
    identity = "the poller's identity"
    action = "sts:AssumeRole" if settings.role_arn else "sts:GetCallerIdentity"
    try:
        session = make_session(settings)
        action = "sts:GetCallerIdentity"
        sts = session.client("sts", region_name=settings.region, endpoint_url=settings.endpoint_url,
                             config=client_config(timeout_s))
        identity = str(sts.get_caller_identity()["Arn"])
        for feed_action, call in _feed_calls(settings, make_clients(settings, session, timeout_s)):
            action = feed_action  # named in the message when this call is denied
            call()
    except ClientError as exc:
        return CheckResult("cloudwatch", False, _client_error(exc, action, identity, settings.role_arn))
    except NoCredentialsError:
        return CheckResult("cloudwatch", False, "no AWS credentials found: set profile or role_arn in "
                                                "the config, or AWS_PROFILE / AWS_ACCESS_KEY_ID")
    except ProfileNotFound:
        return CheckResult("cloudwatch", False, f"AWS profile {settings.profile!r} not found: fix profile "
                                                "or ~/.aws/config")
    except (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError) as exc:
        return CheckResult("cloudwatch", False, f"{target} is unreachable ({type(exc).__name__}): check "
                                                "region, endpoint_url and the network")
    except BotoCoreError as exc:
        return CheckResult("cloudwatch", False, f"{action}: {type(exc).__name__}: {exc}")
    checked = ", ".join(a for a, _ in _feed_calls(settings, None)) or "no feed configured"
    return CheckResult("cloudwatch", True, f"{identity} in {settings.region}: {checked} allowed")


def _client_error(exc: Any, action: str, identity: str, role_arn: str | None) -> str:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    action = IAM_ACTIONS.get(exc.operation_name, action)
    if code in BAD_CREDENTIALS:
        return f"AWS rejected the credentials ({code}): refresh them, or fix profile / AWS_* variables"
    if code in ACCESS_DENIED or status == 403:
        if action == "sts:AssumeRole":
            return (f"may not assume {role_arn} (AccessDenied): allow sts:AssumeRole for the caller in "
                    "the role's trust policy and the caller's policy")
        return f"{identity} may not call {action} (AccessDenied): add {action} to its IAM policy " \
               "(docs/sources.md)"
    return f"{action} failed: {code or status}: {str(exc)[:160]}"


def _feed_calls(settings: CloudWatchSettings, clients: Any) -> list[tuple[str, Callable[[], object]]]:
    """(IAM action, call) per configured feed; ``clients=None`` lists the actions only."""
    calls: list[tuple[str, Callable[[], object]]] = []
    if settings.log_group_prefixes or settings.insights:
        prefix = {"logGroupNamePrefix": settings.log_group_prefixes[0]} if settings.log_group_prefixes else {}
        calls.append(("logs:DescribeLogGroups", lambda: clients.logs.describe_log_groups(limit=1, **prefix)))
    if settings.alarms:
        calls.append(("cloudwatch:DescribeAlarms", lambda: clients.cloudwatch.describe_alarms(MaxRecords=1)))
        if settings.alarm_history:
            calls.append(("cloudwatch:DescribeAlarmHistory",
                          lambda: clients.cloudwatch.describe_alarm_history(MaxRecords=1)))
    if settings.metrics:
        calls.append(("cloudwatch:GetMetricData", lambda: _one_metric(settings, clients)))
    return calls


def _one_metric(settings: CloudWatchSettings, clients: Any) -> object:
    spec, period = settings.metrics[0], settings.metric_period_s
    end = datetime.now(UTC).replace(microsecond=0)
    stat = {"Metric": {"Namespace": spec.namespace, "MetricName": spec.metric,
                       "Dimensions": [{"Name": k, "Value": v} for k, v in spec.dimensions.items()]},
            "Period": period, "Stat": spec.stats[0]}
    return clients.cloudwatch.get_metric_data(
        MetricDataQueries=[{"Id": "m0", "MetricStat": stat, "ReturnData": True}],
        StartTime=end - timedelta(seconds=2 * period), EndTime=end, MaxDatapoints=10)
