"""The stream_processors layout a newcomer reads (issue #9, item 3): one package per step and one
runtime package, no module over 400 lines."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "stream_processors"
MAX_LINES = 400


def test_no_stream_processors_module_is_over_400_lines() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 20  # the package is where this test thinks it is
    long = {str(p.relative_to(ROOT)): n for p in modules
            if (n := len(p.read_text("utf-8").splitlines())) > MAX_LINES}
    assert not long, f"split these modules (over {MAX_LINES} lines): {long}"


def test_each_step_is_a_package_beside_the_shared_runtime() -> None:
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert {"normalize", "score", "correlate", "runtime"} <= packages
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.name not in {"__init__.py", "exceptions.py"})
    assert not loose, f"modules outside a step or the runtime package: {loose}"
