"""The CloudWatch source check against a real moto server that enforces IAM policies.

The server lets the first few calls through unauthenticated (``INITIAL_NO_AUTH_ACTION_COUNT``),
which the fixture spends on creating two IAM users; after that every call is checked against
the caller's policy, so AccessDenied is AWS's own answer, not a fake one.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from producers.checks_platform import check_cloudwatch
from tests.fakes.moto_server import MotoServer, running_moto

REGION = "eu-west-1"
# moto authorizes CloudWatch calls under the endpoint prefix "monitoring:" where AWS uses "cloudwatch:".
READ_ONLY = ["sts:GetCallerIdentity", "logs:DescribeLogGroups", "cloudwatch:DescribeAlarms",
             "cloudwatch:GetMetricData", "monitoring:DescribeAlarms", "monitoring:GetMetricData"]

UseKey = Callable[[tuple[str, str]], None]


@dataclass(frozen=True)
class Users:
    url: str
    full: tuple[str, str]
    no_alarms: tuple[str, str]


def _user(iam: Any, name: str, actions: list[str]) -> tuple[str, str]:
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="seismo", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return str(key["AccessKeyId"]), str(key["SecretAccessKey"])


@pytest.fixture(scope="module")
def users() -> Iterator[Users]:
    with running_moto(env={"INITIAL_NO_AUTH_ACTION_COUNT": "6"}) as moto:
        yield _make_users(moto)


def _make_users(moto: MotoServer) -> Users:
    iam = boto3.client("iam", endpoint_url=moto.url, region_name=REGION, aws_access_key_id="testing",
                       aws_secret_access_key="testing")
    full = _user(iam, "seismo", READ_ONLY)
    no_alarms = _user(iam, "seismo-logs-only", ["sts:GetCallerIdentity", "logs:DescribeLogGroups"])
    return Users(moto.url, full, no_alarms)


@pytest.fixture
def as_user(monkeypatch: pytest.MonkeyPatch) -> UseKey:
    def use(key: tuple[str, str]) -> None:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key[0])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key[1])

    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    return use


def section(url: str, **extra: object) -> dict[str, object]:
    return {"region": REGION, "endpoint_url": url, "log_group_prefixes": ["/ecs/"], "alarm_history": False,
            "metrics": [{"namespace": "AWS/ECS", "metric": "CPUUtilization",
                         "dimensions": {"ServiceName": "payments"}, "stats": ["Average"]}], **extra}


def test_cloudwatch_passes_naming_the_identity_and_each_action_tried(users: Users, as_user: UseKey) -> None:
    as_user(users.full)
    result = check_cloudwatch(section(users.url))
    assert result.ok, result.detail
    assert result.detail == ("arn:aws:iam::123456789012:user/seismo in eu-west-1: logs:DescribeLogGroups, "
                             "cloudwatch:DescribeAlarms, cloudwatch:GetMetricData allowed")


def test_cloudwatch_access_denied_names_the_missing_iam_action(users: Users, as_user: UseKey) -> None:
    as_user(users.no_alarms)
    result = check_cloudwatch(section(users.url))
    assert not result.ok
    assert result.detail == ("arn:aws:iam::123456789012:user/seismo-logs-only may not call "
                             "cloudwatch:DescribeAlarms (AccessDenied): add cloudwatch:DescribeAlarms to its "
                             "IAM policy (docs/sources.md)")


def test_cloudwatch_with_unknown_credentials_says_they_were_rejected(users: Users, as_user: UseKey) -> None:
    as_user(("AKIAUNKNOWN000000000", "nope"))
    result = check_cloudwatch(section(users.url))
    assert not result.ok
    assert result.detail.startswith("AWS rejected the credentials (InvalidClientTokenId)")


def test_cloudwatch_unreachable_endpoint_says_so(as_user: UseKey) -> None:
    as_user(("testing", "testing"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    result = check_cloudwatch(section(url), timeout_s=2)
    assert not result.ok
    assert result.detail.startswith(f"{url} is unreachable (EndpointConnectionError)")
