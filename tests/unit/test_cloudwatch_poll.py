"""``seismo poll cloudwatch``: the ``[cloudwatch]`` section through ``open_poller``, no AWS call made."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from producers.config import ConfigError, PollersFile
from producers.poll import open_poller
from producers.sources.cloudwatch import settings_from_section
from producers.sources.cloudwatch_logs import LogGroupsStream
from tests.fakes import memory_wiring

SECTION: dict[str, Any] = {
    "region": "eu-west-1",
    "endpoint_url": "http://127.0.0.1:9",  # never contacted: building clients makes no request
    "interval_s": 12.5,
    "max_pages_per_cycle": 3,
    "burst": 4,
    "log_group_prefixes": ["/ecs/"],
    "insights": [{"name": "errors", "log_groups": ["/ecs/pay"]}],
    "metrics": [],
    "alarms": True,
}


def streams_of(section: dict[str, Any]) -> tuple[list[str], Any]:
    wiring = memory_wiring()[0]

    async def open_it() -> tuple[list[str], Any]:
        async with open_poller("cloudwatch", PollersFile(cloudwatch=section), wiring) as poller:
            return [s.name for s in poller.streams], poller

    return asyncio.run(open_it())


def test_a_cloudwatch_section_opens_a_poller_with_one_stream_per_configured_feed() -> None:
    names, poller = streams_of(SECTION)
    assert names == ["logs:/ecs/", "insights:errors", "alarms:*"]
    assert poller.config.interval_s == 12.5
    assert poller.config.max_pages_per_cycle == 3


def test_the_common_poll_keys_are_not_mistaken_for_unknown_cloudwatch_keys() -> None:
    settings = settings_from_section(SECTION)
    assert settings.region == "eu-west-1"
    assert settings.burst == 4  # a key both schemas know reaches CloudWatch too


def test_an_unknown_key_in_the_cloudwatch_section_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"cloudwatch\.log_groups"):
        streams_of({**SECTION, "log_groups": ["/ecs/"]})


def test_requests_per_second_in_the_section_sets_the_sources_rate_limit() -> None:
    _, poller = streams_of({**SECTION, "requests_per_second": 0.5})
    stream = poller.streams[0]
    assert isinstance(stream, LogGroupsStream)
    assert stream.caller.ctx.limiter.rate == 0.5
    _, default = streams_of(SECTION)
    assert default.streams[0].caller.ctx.limiter.rate == 5.0  # the common rate_per_s default
