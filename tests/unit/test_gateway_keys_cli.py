"""``seismo keys create|list|revoke`` through typer's runner, on a keys file of the test's own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mcp_gateway.auth.keys import KeyStore
from seismo.cli import app


@pytest.fixture
def keys_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "keys.json"
    monkeypatch.setenv("SEISMO_GATEWAY_KEYS_FILE", str(path))
    return path


def test_create_prints_the_key_once_list_hides_it_and_revoke_disables_it(keys_file: Path) -> None:
    runner = CliRunner()
    created = runner.invoke(app, ["keys", "create", "--name", "alice", "--role", "investigator", "--json"])
    assert created.exit_code == 0, created.output
    key = json.loads(created.output)
    assert key["role"] == "investigator" and KeyStore(keys_file).verify(key["key"]) is not None
    listed = runner.invoke(app, ["keys", "list"])
    assert key["id"] in listed.output and "alice" in listed.output and key["key"] not in listed.output
    revoked = runner.invoke(app, ["keys", "revoke", key["id"]])
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    assert KeyStore(keys_file).verify(key["key"]) is None


def test_mistakes_get_one_line_with_the_fix_and_no_traceback(keys_file: Path) -> None:
    runner = CliRunner()
    unknown = runner.invoke(app, ["keys", "revoke", "nope"])
    assert unknown.exit_code == 1 and "seismo keys list" in unknown.output
    bad_role = runner.invoke(app, ["keys", "create", "--name", "x", "--role", "root"])
    assert bad_role.exit_code == 2 and "Traceback" not in bad_role.output
    keys_file.write_text("{broken")
    corrupt = runner.invoke(app, ["keys", "list"])
    assert corrupt.exit_code == 1 and str(keys_file) in corrupt.output.replace("\n", "")
    assert "Traceback" not in corrupt.output
