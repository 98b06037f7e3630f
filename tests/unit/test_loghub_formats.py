"""Loghub log formats split a sample line of each of the 16 systems into its Content."""

from __future__ import annotations

import pytest

from stream_processors.normalize.templating.exceptions import UnknownLogFormat
from stream_processors.normalize.templating.loghub import (
    LOGHUB_FORMATS,
    compile_format,
    loghub_format,
    loghub_systems,
)

SAMPLES = {
    "HDFS": (
        "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block "
        "blk_38865049064139660 terminating",
        "PacketResponder 1 for block blk_38865049064139660 terminating",
    ),
    "Hadoop": (
        "2015-10-18 18:01:47,978 INFO [main] org.apache.hadoop.mapreduce.v2.app.MRAppMaster: "
        "Created MRAppMaster for application appattempt_1445144423722_0020_000001",
        "Created MRAppMaster for application appattempt_1445144423722_0020_000001",
    ),
    "Spark": (
        "17/06/09 20:10:40 INFO spark.SecurityManager: Changing view acls to: yarn,curi",
        "Changing view acls to: yarn,curi",
    ),
    "Zookeeper": (
        "2015-07-29 17:41:44,747 - INFO  [QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:"
        "FastLeaderElection@774] - Notification time out: 3200",
        "Notification time out: 3200",
    ),
    "BGL": (
        "- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 "
        "R02-M1-N0-C:J12-U11 RAS KERNEL INFO instruction cache parity error corrected",
        "instruction cache parity error corrected",
    ),
    "HPC": (
        "134681 node-246 unix.hw state_change.unavailable 1077804742 1 Component State "
        "Change: Component \\042alt0\\042 is in the unavailable state (HWID=1973)",
        "Component State Change: Component \\042alt0\\042 is in the unavailable state "
        "(HWID=1973)",
    ),
    "Thunderbird": (
        "- 1131566461 2005.11.09 dn228 Nov 9 12:01:01 dn228/dn228 crond(pam_unix)[2915]: "
        "session closed for user root",
        "session closed for user root",
    ),
    "Windows": (
        "2016-09-28 04:30:30, Info                  CBS    Loaded Servicing Stack "
        "v6.1.7601.23505 with Core: C:\\Windows\\winsxs\\cbscore.dll",
        "Loaded Servicing Stack v6.1.7601.23505 with Core: C:\\Windows\\winsxs\\cbscore.dll",
    ),
    "Linux": (
        "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: check pass; user unknown",
        "check pass; user unknown",
    ),
    "Android": (
        "03-17 16:13:38.811  1702  2395 D WindowManager: printFreezingDisplayLogs "
        "allDrawn= false",
        "printFreezingDisplayLogs allDrawn= false",
    ),
    "HealthApp": (
        "20171223-22:15:29:606|Step_LSC|30002312|onStandStepChanged 3579",
        "onStandStepChanged 3579",
    ),
    "Apache": (
        "[Sun Dec 04 04:47:44 2005] [error] mod_jk child workerEnv in error state 6",
        "mod_jk child workerEnv in error state 6",
    ),
    "Proxifier": (
        "[10.30 16:49:06] chrome.exe - proxy.cse.cuhk.edu.hk:5070 open through proxy "
        "proxy.cse.cuhk.edu.hk:5070 HTTPS",
        "proxy.cse.cuhk.edu.hk:5070 open through proxy proxy.cse.cuhk.edu.hk:5070 HTTPS",
    ),
    "OpenSSH": (
        "Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186",
        "Invalid user webmaster from 173.234.31.186",
    ),
    "OpenStack": (
        "nova-api.log.1.2017-05-16_13:53:08 2017-05-16 00:00:00.008 25746 INFO "
        "nova.osapi_compute.wsgi.server [req-38101a0b-2096-447d-96ea-a692162415ae "
        "113d3a99c3da401fbd62cc2caa5b96d2 - - -] 10.11.10.1 "
        '"GET /v2/servers/detail HTTP/1.1" status: 200 len: 1893 time: 0.2477829',
        '10.11.10.1 "GET /v2/servers/detail HTTP/1.1" status: 200 len: 1893 time: 0.2477829',
    ),
    "Mac": (
        "Jul  1 09:00:55 calvisitor-10-105-160-95 kernel[0]: IOThunderboltSwitch<0>(0x0)"
        "::listenerCallback - Thunderbolt HPD packet for route = 0x0 port = 11 unplug = 0",
        "IOThunderboltSwitch<0>(0x0)::listenerCallback - Thunderbolt HPD packet for route "
        "= 0x0 port = 11 unplug = 0",
    ),
}


def test_every_loghub_system_has_a_format_and_a_sample() -> None:
    assert set(loghub_systems()) == set(SAMPLES) == set(LOGHUB_FORMATS)
    assert len(LOGHUB_FORMATS) == 16


@pytest.mark.parametrize("system", sorted(SAMPLES))
def test_the_loghub_format_extracts_the_content_of_a_sample_line(system: str) -> None:
    line, content = SAMPLES[system]
    assert loghub_format(system).content(line) == content


def test_hdfs_format_is_the_published_benchmark_string() -> None:
    assert LOGHUB_FORMATS["HDFS"] == "<Date> <Time> <Pid> <Level> <Component>: <Content>"


def test_parse_returns_every_header_field() -> None:
    fields = loghub_format("linux").parse("Jun 14 15:16:02 combo sshd(pam_unix)[19937]: x y")
    assert fields is not None
    assert fields["Component"] == "sshd(pam_unix)"
    assert fields["PID"] == "19937"
    assert fields["Content"] == "x y"


def test_a_line_that_does_not_fit_the_format_gives_none() -> None:
    assert loghub_format("HDFS").content("not a hdfs line") is None


def test_system_names_are_case_insensitive() -> None:
    assert loghub_format("openssh").name == "OpenSSH"


def test_an_unknown_system_raises_with_the_known_names() -> None:
    with pytest.raises(UnknownLogFormat, match="HDFS"):
        loghub_format("Nope")


def test_a_format_without_content_is_rejected() -> None:
    with pytest.raises(UnknownLogFormat):
        compile_format("<Date> <Time>")
