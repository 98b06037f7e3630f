"""Reading the TOML or YAML files an operator points Seismo at (poller config, mask rules)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import yaml


class StructuredFileError(ValueError):
    """The file cannot be read or parsed; the message names the file and the reason."""


def read_structured(path: Path, what: str) -> Any:
    """Parse ``path`` by its suffix (``.toml``, ``.yaml``, ``.yml``); ``what`` names it in errors.

    Raises :class:`StructuredFileError` (unreadable, not UTF-8, not valid TOML/YAML, unknown
    suffix); an empty YAML file reads as ``{}``.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StructuredFileError(f"cannot read {what} {path}: {exc.strerror}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise StructuredFileError(f"{path} ({what}) is not UTF-8 (byte 0x{data[exc.start]:02x} on line "
                                  f"{line}); save it as UTF-8, e.g. `iconv -f latin1 -t utf-8`") from None
    try:
        if path.suffix == ".toml":
            return tomllib.loads(text)
        if path.suffix in (".yaml", ".yml"):
            return yaml.safe_load(text) or {}
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise StructuredFileError(f"{path}: not valid {path.suffix[1:].upper()}: {exc}") from None
    raise StructuredFileError(f"{path}: {what} must end in .toml, .yaml or .yml")
