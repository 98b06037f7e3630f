"""The masker's digit-shape memo: tokens of one shape must get placeholders at the same places.

The memo is exact only because of what the built-in rules can tell apart among digits
(see ``_FLAT`` / ``_EXACT`` in masking.py). The first test pins that down from the rules'
parsed regexes, so a new rule with a literal digit fails here instead of silently
masking wrong; the others compare the memo against a direct scan, token by token.
"""

from __future__ import annotations

import random
import string
from typing import Any

import pytest

from stream_processors.normalize.templating.masking import Masker, _apply
from stream_processors.normalize.templating.rules import DEFAULT_RULES

_parser: Any = pytest.importorskip("re._parser")
_constants: Any = pytest.importorskip("re._constants")

DIGITS = frozenset(string.digits)


def _digit_sensitive(pattern: str) -> set[tuple[str, str]]:
    """Literal digits and character classes holding some but not all digits in ``pattern``."""
    found: set[tuple[str, str]] = set()
    c = _constants

    def walk(items: Any) -> None:
        for op, av in items:
            if op is c.LITERAL and chr(av) in DIGITS:
                found.add(("literal", chr(av)))
            elif op is c.IN:
                chars: set[str] = set()
                negate = False
                for o, a in av:
                    if o is c.NEGATE:
                        negate = True
                    elif o is c.LITERAL:
                        chars.add(chr(a))
                    elif o is c.RANGE:
                        chars |= {chr(x) for x in range(a[0], a[1] + 1)}
                    elif o is c.CATEGORY and a in (c.CATEGORY_DIGIT, c.CATEGORY_WORD):
                        chars |= DIGITS
                digits = (DIGITS - chars) if negate else (chars & DIGITS)
                if digits and digits != DIGITS:
                    found.add(("class", "".join(sorted(digits))))
            elif op is c.SUBPATTERN:
                walk(av[-1])
            elif op in (c.MAX_REPEAT, c.MIN_REPEAT):
                walk(av[2])
            elif op is c.BRANCH:
                for branch in av[1]:
                    walk(branch)
            elif op in (c.ASSERT, c.ASSERT_NOT):
                walk(av[1])

    walk(_parser.parse(pattern))
    return found


def test_only_the_ip_pod_and_hex_rules_tell_digits_apart_and_only_as_the_shapes_assume() -> None:
    sensitive = {r.name: _digit_sensitive(r.pattern.pattern) for r in DEFAULT_RULES}
    assert {name for name, found in sensitive.items() if found} == {"ip", "pod", "hex"}
    assert sensitive["hex"] == {("literal", "0")}  # 0x: 0 keeps its own shape digit
    assert sensitive["pod"] == {("class", "2456789")}  # {0}, {1, 3}, {2, 4-9} in _EXACT
    # The IPv4 octet ranges; shaped tokens with three dots mark their valid octet runs.
    assert sensitive["ip"] <= {
        ("class", "01234"), ("class", "012345"), ("literal", "1"), ("literal", "2"), ("literal", "5"),
    }


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _token(rng: random.Random) -> str:
    """A token from shapes where digit values matter to some rule, with random digits."""

    def octet() -> str:  # many invalid 3-digit runs
        return _digits(rng, rng.choice((1, 2, 3, 3, 3)))

    k8s = "bcdfghjklmnpqrstvwxz0123456789"
    shapes = [
        lambda: ".".join(octet() for _ in range(4)),
        lambda: "/" + ".".join(octet() for _ in range(4)) + ":" + _digits(rng, rng.randint(1, 6)),
        lambda: "(" + ".".join(octet() for _ in range(4)) + "),",
        lambda: "v" + ".".join(octet() for _ in range(rng.randint(3, 5))),
        lambda: "[" + ":".join(_hex(rng, 4) for _ in range(8)) + "]:" + _digits(rng, 3),
        lambda: f"{_digits(rng, 1)}x{_hex(rng, rng.randint(1, 9))}",
        lambda: f"{_digits(rng, 2)}X{_hex(rng, 4)},",
        lambda: "web-" + "".join(rng.choice(k8s) for _ in range(rng.randint(6, 10)))
        + "-" + "".join(rng.choice(k8s) for _ in range(5)),
        lambda: "x-" + _digits(rng, 7) + "-" + _digits(rng, 5),
        lambda: f"blk_-{_digits(rng, rng.randint(17, 19))}",
        lambda: f"core.{_digits(rng, rng.randint(1, 5))}",
        lambda: f"{_digits(rng, 4)}-{_digits(rng, 2)}-{_digits(rng, 2)}T{_digits(rng, 2)}:{_digits(rng, 2)}:"
        f"{_digits(rng, 2)}Z",
        lambda: f"{_digits(rng, rng.randint(1, 4))}{rng.choice(['ms', 's', 'KB', 'MiB', 'B', ''])}",
        lambda: f"{_hex(rng, 8)}-{_hex(rng, 4)}-{_hex(rng, 4)}-{_hex(rng, 4)}-{_hex(rng, 12)}",
        lambda: f"index={_digits(rng, rng.randint(1, 10))},",
        lambda: f"attempt_{_digits(rng, 12)}_{_digits(rng, 4)}_m_{_digits(rng, 6)}_{_digits(rng, 1)}",
        lambda: f"{_digits(rng, 1)}.{_digits(rng, 1)}.{_digits(rng, 1)}-{_digits(rng, 1)}.{_digits(rng, 3)}",
        lambda: "".join(rng.choice("0123456789.:-x/_ab") for _ in range(rng.randint(1, 14))),
    ]
    return rng.choice(shapes)()


def _direct(masker: Masker, token: str) -> tuple[str, tuple[object, ...]]:
    return _apply(token, masker._spans(token))


def test_shaped_tokens_mask_exactly_as_a_direct_scan_would() -> None:
    rng = random.Random(20261126)
    masker = Masker()
    tokens = [_token(rng) for _ in range(30_000)]
    for token in tokens:
        assert masker._scan(token) == _direct(masker, token), token
    shapes = masker._shapes
    assert shapes is not None
    # The memo was exercised: many tokens met a shape already seen.
    assert len(shapes) < 0.6 * len(set(tokens))


def test_whole_lines_mask_the_same_whatever_the_memos_hold() -> None:
    rng = random.Random(7)
    lines = [" ".join(_token(rng) for _ in range(rng.randint(1, 6))) for _ in range(3_000)]
    warm = Masker()
    for line in lines:  # fill the shape memo with every shape first
        warm.mask(line)
    for line in lines:
        cold = Masker()
        cold._shapes = None  # no shape memo: every token scanned directly
        assert warm.mask(line) == cold.mask(line), line


def test_custom_rule_sets_never_use_shapes() -> None:
    from stream_processors.normalize.templating.masking import with_rules
    from stream_processors.normalize.templating.rules import rule

    masker = with_rules([rule("code", r"E7\d\d", "<CODE>")])
    assert masker._shapes is None
    assert masker.mask("failed E701 and 801").text == "failed <CODE> and <NUM>"


def test_non_ascii_digits_are_never_shaped() -> None:
    masker = Masker()
    # Arabic-Indic digits are \d to the rules but not to the shape table.
    masker.mask("core.12 core.7")
    assert masker._shapes is not None
    before = dict(masker._shapes)
    for token in ("core.\u0663\u0664", "\u0661\u0662.\u0663\u0664.\u0665\u0666.\u0667\u0668"):
        assert masker._scan(token) == _direct(masker, token)
    assert masker._shapes == before
    assert masker.mask("core.\u0663\u0664").text == Masker().mask("core.\u0663\u0664").text


@pytest.mark.parametrize(
    ("token", "masked"),
    [
        ("10.0.0.1", "<IP>"),
        ("10.0.0.256", "<NUM>"),  # not an IP: one run is no octet
        ("/10.251.123.195:50010", "/<IP>"),
        ("/10.251.123.099:50010", "/<NUM>:<NUM>"),
        ("0x1f", "<HEX>"),
        ("1x1f", "1x1f"),
        ("web-7d9c4f6b8-x2k9q", "<POD>"),
        ("web-7d9c4f6b8-x2k0q", "web-<HEX>-x2k0q"),  # 0 is no pod-hash character
    ],
)
def test_tokens_that_differ_only_in_digit_values_keep_their_own_masks(token: str, masked: str) -> None:
    masker = Masker()
    for other in ("10.0.0.1", "10.0.0.256", "/10.251.123.195:50010", "/10.251.123.099:50010", "0x1f", "1x1f",
                  "web-7d9c4f6b8-x2k9q", "web-7d9c4f6b8-x2k0q"):
        masker.mask(other)
    assert masker.mask(token).text == masked
    assert masker._scan(token) == _direct(masker, token)


def test_the_shape_memo_is_bounded_and_stays_exact_when_it_is_emptied() -> None:
    rng = random.Random(11)
    masker = Masker(memo_size=64)
    for _ in range(5_000):
        token = _token(rng)
        assert masker._scan(token) == _direct(masker, token), token
        assert masker._shapes is not None and len(masker._shapes) <= 64
