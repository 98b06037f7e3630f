"""Fixtures for the CLI tests (used explicitly, never autouse)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No SEISMO_* variable from the developer's shell leaks in; state goes to a temp dir.

    Also puts the root logger back: a command sets up logging on the runner's stderr.
    """
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    for name in list(os.environ):
        if name.startswith("SEISMO_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SEISMO_STATE_DIR", str(tmp_path / "state"))
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
