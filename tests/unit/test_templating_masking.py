"""Semantic masking replaces variable parts with typed placeholders, and only those."""

from __future__ import annotations

import pytest

from stream_processors.normalize.templating.exceptions import InvalidMaskRule
from stream_processors.normalize.templating.masking import Masker, Param, mask, with_rules
from stream_processors.normalize.templating.rules import rule


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("from 10.0.0.12 port 22", "from <IP> port <NUM>"),
        ("peer 10.0.0.12:9092 down", "peer <IP> down"),
        ("bind [::1]:8080 and fe80::1ff:fe23:4567:890a", "bind <IP> and <IP>"),
        ("req 123e4567-e89b-12d3-a456-426614174000 done", "req <UUID> done"),
        ("at 2024-01-02T03:04:05.123Z ok", "at <TS> ok"),
        ("at 2015-10-18 18:01:47,978 ok", "at <TS> ok"),
        ("at Sun Dec 04 04:47:44 2005 ok", "at <TS> ok"),
        ("at Jul 9 22:53:19 ok", "at <TS> ok"),
        ("open /var/log/app.log failed", "open <PATH> failed"),
        ("see https://example.com/a?b=1 now", "see <URL> now"),
        ("addr 0x7ffe12ab and 1f6f00a0deadbeef", "addr <HEX> and <HEX>"),
        ("retry 3 of 10, took -1.5", "retry <NUM> of <NUM>, took <NUM>"),
        ("took 300ms then 1.5s then 2h30m", "took <DURATION> then <DURATION> then <DURATION>"),
        ("wrote 64MB of 2GiB (512B)", "wrote <SIZE> of <SIZE> (<SIZE>)"),
        ("pod checkout-7d9f8c6b5-x2k4p restarted", "pod <POD> restarted"),
        ("nic 00:1a:2b:3c:4d:5e up", "nic <MAC> up"),
        ("block blk_-6952295868487656571 done", "block <ID> done"),
        ("uid=0 euid=0 (uid=501)", "uid=<NUM> euid=<NUM> (uid=<NUM>)"),
        ("generating core.2275", "generating core.<NUM>"),
    ],
)
def test_each_variable_kind_gets_its_placeholder(text: str, expected: str) -> None:
    assert mask(text).text == expected


@pytest.mark.parametrize(
    "text",
    [
        "Failed password for root ssh2 on tty2",
        "x86 build of log4j with hadoop-metrics2.properties",
        "mapped 4G/4G trampoline",
        "deadbeef is a word here",
        "crypt-bcdfgh-bcdfg is not a pod",
        "HttpServer2 started on eth0",
        "Changing view acls to: yarn,curi",
    ],
)
def test_look_alikes_are_left_alone(text: str) -> None:
    assert mask(text).text == text
    assert mask(text).params == ()


def test_params_keep_line_order_and_original_text() -> None:
    masked = mask("user 42 from 10.1.2.3 at /tmp/x")
    assert masked.params == (
        Param("<NUM>", "42"),
        Param("<IP>", "10.1.2.3"),
        Param("<PATH>", "/tmp/x"),
    )
    assert masked.tokens == ("user", "<NUM>", "from", "<IP>", "at", "<PATH>")


def test_unicode_is_nfkc_normalised_and_whitespace_collapsed() -> None:
    masked = mask("  \uff26\uff41\uff49\uff4c\uff45\uff44\tlogin \n for   \uff55\uff53\uff45\uff52  ")
    assert masked.text == "Failed login for user"
    assert masked.source == "Failed login for user"


def test_entropy_is_zero_for_one_repeated_character_and_higher_for_random_text() -> None:
    assert mask("aaaa").entropy == 0.0
    assert mask("k9Zq2xP7wL0m").entropy > mask("aaab").entropy > 0.0


def test_variable_ratio_is_the_masked_share_of_the_line() -> None:
    assert mask("id 1234").variable_ratio == pytest.approx(4 / 7)
    assert mask("").variable_ratio == 0.0


def test_masking_twice_gives_the_same_result_whatever_the_memo() -> None:
    masker = Masker(memo_size=1)
    line = "retry 3 from 10.0.0.1 at Sun Dec 04 04:47:44 2005"
    assert masker.mask(line) == masker.mask(line) == Masker().mask(line)


def test_repeated_lines_come_from_a_bounded_line_memo_with_the_same_result() -> None:
    from stream_processors.normalize.templating import masking

    masker = Masker()
    lines = [f"user u{i % 97} logged in from 10.0.{i % 7}.{i % 250} after {i} ms" for i in range(20_000)]
    lines += ["caf\u00e9 \uff11\uff12 ms", "caf\u00e9 \uff11\uff12 ms", "x" * 600, "x" * 600]
    for line in lines:
        assert masker.mask(line) == Masker().mask(line)
        assert len(masker._lines) <= masking._LINE_MEMO_SIZE
    assert masker.mask(lines[-1]).text == "x" * 600  # too long to be kept, still masked
    assert "x" * 600 not in masker._lines
    assert masker.mask("caf\u00e9 \uff11\uff12 ms").text == "caf\u00e9 <NUM> ms"  # NFKC before masking


def test_user_rules_take_priority_over_the_built_in_ones() -> None:
    masker = with_rules([rule("ticket", r"(?<![\w-])[A-Z]{2,5}-\d+(?![\w-])", "<TICKET>")])
    assert masker.mask("fixes OPS-123 in 5 ms").text == "fixes <TICKET> in <NUM> ms"


def test_a_user_rule_named_like_a_built_in_one_replaces_it() -> None:
    masker = with_rules([rule("num", r"(?<!\w)\d+(?!\w)", "<N>")])
    assert masker.mask("retry 3").text == "retry <N>"
    assert [r.name for r in masker.rules].count("num") == 1


@pytest.mark.parametrize(
    ("name", "pattern", "placeholder"),
    [
        ("bad", "(unclosed", "<BAD>"),
        ("bad", r"(?P<x>\d+)", "<BAD>"),
        ("bad", r"\d*", "<BAD>"),
        ("bad", r"\d+", "lower"),
    ],
)
def test_malformed_rules_are_rejected_at_configuration_time(
    name: str, pattern: str, placeholder: str
) -> None:
    with pytest.raises(InvalidMaskRule):
        rule(name, pattern, placeholder)


def test_duplicate_rule_names_are_rejected() -> None:
    with pytest.raises(InvalidMaskRule):
        Masker([rule("a", r"\d+"), rule("a", r"x+")])
