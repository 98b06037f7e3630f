"""`seismo poll` names the refused token's origin when a source answers 401."""

from __future__ import annotations

from pathlib import Path

from producers.poll import _token_hint
from producers.sources import AccessDenied, ApiRejected


def write(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "pollers.toml"
    path.write_text(f'[sentry]\norganization = "acme"\nprojects = ["payments"]\n{extra}', "utf-8")
    return path


def test_a_401_names_the_token_variable_and_where_the_scopes_are_listed(tmp_path: Path) -> None:
    hint = _token_hint(AccessDenied("GET /api/0/ -> 401", 401), "sentry", write(tmp_path))
    assert "SEISMO_SENTRY_TOKEN" in hint and "docs/sources.md" in hint


def test_a_401_with_a_custom_variable_names_that_variable(tmp_path: Path) -> None:
    path = write(tmp_path, 'token_env = "ACME_SENTRY"\n')
    assert "ACME_SENTRY" in _token_hint(AccessDenied("GET -> 401", 401), "sentry", path)


def test_other_refusals_get_no_token_hint(tmp_path: Path) -> None:
    path = write(tmp_path)
    assert _token_hint(AccessDenied("GET -> 403", 403), "sentry", path) == ""
    assert _token_hint(ApiRejected("GET -> 400", 400), "sentry", path) == ""
