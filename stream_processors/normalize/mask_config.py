"""User-defined placeholder rules from a TOML or YAML file (``SEISMO_MASK_RULES_FILE``).

::

    # mask-rules.toml
    [[rule]]
    name = "order_id"              # a built-in rule's name replaces that rule in place
    pattern = "ORD-[0-9]{6,}"      # matched against single tokens (see templating/rules.py)
    placeholder = "<ORDER>"        # default: <NAME>
    # guard = "ORD-"               # optional cheap pre-check regex
    # first = false                # try after the built-in rules (default: before)

The same rules apply to every service (one rule set, nothing per dataset).
Raises :class:`MaskRulesError` with the file, the rule and what is wrong.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from seismo.files import StructuredFileError, read_structured
from stream_processors.normalize.templating import Masker
from stream_processors.normalize.templating.exceptions import InvalidMaskRule
from stream_processors.normalize.templating.masking import with_rules
from stream_processors.normalize.templating.rules import MaskRule, rule


class MaskRulesError(ValueError):
    """The rules file cannot be used; the message names the file and the rule."""


class RuleSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    pattern: str = Field(min_length=1)
    placeholder: str | None = Field(default=None, pattern=r"^<[A-Z0-9_:]+>$")
    guard: str | None = None
    first: bool = True


class RulesFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: list[RuleSpec] = Field(default_factory=list)


def load_masker(path: Path) -> Masker:
    """A :class:`Masker` with the file's rules added to the built-in ones."""
    try:
        spec = RulesFile.model_validate(read_structured(path, "mask rules"))
    except StructuredFileError as exc:
        raise MaskRulesError(str(exc)) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise MaskRulesError(f"{path}: {where}: {first['msg']}") from None
    built: dict[bool, list[MaskRule]] = {True: [], False: []}
    for r in spec.rule:
        try:
            built[r.first].append(rule(r.name, r.pattern, r.placeholder, r.guard))
        except InvalidMaskRule as exc:
            raise MaskRulesError(f"{path}: {exc}") from None
    masker = with_rules(built[True], first=True)
    if built[False]:
        masker = with_rules(built[False], base=masker.rules, first=False)
    return masker
