from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas.models import Event
from stream_processors.normalize.mask_config import MaskRulesError, load_masker
from stream_processors.normalize.normalizer import Normalizer


def ev(i: int, message: str) -> Event:
    return Event(id=f"e{i}", source="file", kind="log", timestamp=datetime(2024, 1, 1, tzinfo=UTC),
                 service="shop", severity="info", message=message)


def test_a_user_rule_from_toml_masks_its_tokens_with_its_placeholder(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text('[[rule]]\nname = "order_id"\npattern = "ORD-[0-9]{6,}"\nplaceholder = "<ORDER>"\n')
    masker = load_masker(path)
    assert masker.mask("shipped ORD-1234567 today").text == "shipped <ORDER> today"
    normalizer = Normalizer(masker=masker)
    a = normalizer.normalize(ev(1, "order ORD-100001 paid"))
    b = normalizer.normalize(ev(2, "order ORD-998877 paid"))
    assert a.template == b.template == "order <ORDER> paid"
    assert a.template_id == b.template_id


def test_yaml_rules_can_go_after_the_built_in_ones(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rule:\n  - name: ticket\n    pattern: 'TCK[0-9]+'\n    first: false\n")
    masker = load_masker(path)
    assert masker.rules[-1].name == "ticket"
    assert masker.mask("see TCK42").text == "see <TICKET>"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("r.toml", '[[rule]]\nname = "x"\npattern = "("\n', "bad regex"),
        ("r.toml", '[[rule]]\nname = "x"\n', "rule.0.pattern"),
        ("r.toml", '[[rule]]\nname = "x"\npattern = "a"\nplaceholder = "lower"\n', "placeholder"),
        ("r.toml", "[[rule]\n", "not valid TOML"),
        ("r.json", "{}", ".toml, .yaml or .yml"),
    ],
)
def test_a_broken_rules_file_raises_a_clear_error(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(MaskRulesError, match=message.replace(".", r"\.")) as info:
        load_masker(path)
    assert str(path) in str(info.value)


def test_a_missing_rules_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(MaskRulesError, match="cannot read"):
        load_masker(tmp_path / "nope.toml")
