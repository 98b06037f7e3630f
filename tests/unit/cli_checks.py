"""Assertions shared by the CLI error tests: one ``error:`` line, the exit code, no traceback."""

from __future__ import annotations

from typer.testing import Result


def error_lines(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def assert_one_error(result: Result, code: int, *fragments: str) -> str:
    """Exit ``code``, exactly one ``error:`` line holding every fragment, and no traceback or box."""
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    errors = error_lines(result)
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert "╭" not in result.stderr
    return errors[0]
