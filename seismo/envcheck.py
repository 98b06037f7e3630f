"""Loading :class:`Settings` for a command: an invalid ``SEISMO_*`` value becomes one line per variable.

``Settings()`` raises pydantic's ``ValidationError``, which names the *field*
(``partitions``) in a 40-line traceback.  :func:`load_settings` turns it into
:class:`SettingsError` whose lines name the *variable*, the value given, what is
wrong and what to set instead::

    SEISMO_PARTITIONS='abc' is invalid: not a whole number; set a whole number ≥ 1, or unset it (default 3)
"""

from __future__ import annotations

import os
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt
from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from seismo.settings import Settings

PREFIX = "SEISMO_"


class SettingsError(ValueError):
    """One or more ``SEISMO_*`` variables hold a value Seismo cannot use.  Exit code 2.

    ``lines`` holds one self-contained sentence per bad variable.
    """

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def load_settings(**overrides: Any) -> Settings:
    """``Settings(**overrides)`` from the environment; raises :class:`SettingsError` on a bad value."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        errors = exc.errors()
        # A field derived from another (the namespace from the topic prefix) repeats its
        # error; report the variables the user actually set when there are any.
        given = {k.upper() for k in os.environ}
        typed = [e for e in errors if e["loc"] and PREFIX + str(e["loc"][0]).upper() in given]
        raise SettingsError([describe(err) for err in typed or errors]) from None


def describe(err: ErrorDetails) -> str:
    """One line for one failing field: variable, value, cause, fix."""
    name = str(err["loc"][0]) if err["loc"] else "?"
    field = Settings.model_fields.get(name)
    variable = PREFIX + name.upper()
    cause = _cause(err)
    if field is None:
        return f"{variable}={err['input']!r} is invalid: {cause}"
    default = field.get_default(call_default_factory=False)
    shown = "empty" if default == "" else default
    unset = "unset it" + (f" (default {shown})" if default is not None else "")
    fix = "fix it" if err["type"] == "value_error" else f"set {expected(field)}"
    return f"{variable}={err['input']!r} is invalid: {cause}; {fix}, or {unset}"


def _cause(err: ErrorDetails) -> str:
    msg = err["msg"]
    kind = err["type"]
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "not a whole number"
    if kind in ("float_parsing", "float_type"):
        return "not a number"
    if kind == "literal_error":
        return "not one of the choices"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return "out of range"
    return msg[:1].lower() + msg[1:]


def expected(field: FieldInfo) -> str:
    """What a valid value looks like, from the field's type and bounds (``a whole number ≥ 1``)."""
    annotation = _strip_optional(field.annotation)
    metadata = list(field.metadata)
    if get_origin(annotation) is Annotated:
        annotation, *extra = get_args(annotation)
        metadata += [m for info in extra if isinstance(info, FieldInfo) for m in info.metadata]
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(str(a) for a in get_args(annotation))
    bounds = [f"{sign} {getattr(m, attr)}" for m in metadata
              for kind, sign, attr in ((Ge, "≥", "ge"), (Gt, ">", "gt"), (Le, "≤", "le"), (Lt, "<", "lt"))
              if isinstance(m, kind)]
    if annotation is int:
        noun = "a whole number"
    elif annotation is float:
        noun = "a number"
    elif field.description:
        noun = f"a valid value ({field.description.rstrip('.')})"
    else:
        noun = "a valid value"
    return noun + (" " + " and ".join(bounds) if bounds else "")


def _strip_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        rest = [a for a in get_args(annotation) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return annotation
