"""``seismo keys create|list|revoke``: the gateway's API keys (stored hashed; see auth/keys.py).

Key management is an admin's act: it needs write access to the keys file
(``SEISMO_GATEWAY_KEYS_FILE``, default ``STATE_DIR/gateway/keys.json``), which running
gateways re-read on change — a revoked key stops working at its next call.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from mcp_gateway.auth.keys import KeyFileError, KeyStore, default_keys_path
from mcp_gateway.auth.roles import Role
from mcp_gateway.settings import GatewaySettings
from seismo.settings import Settings

keys_app = typer.Typer(help="API keys of the MCP gateway (HTTP callers need one).", no_args_is_help=True)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def keys_path(settings: Settings | None = None, gateway: GatewaySettings | None = None) -> Path:
    gs = gateway or GatewaySettings()
    return gs.keys_file or default_keys_path((settings or Settings()).state_dir)


def demo_key(settings: Settings, name: str = "demo") -> str:
    """Create an admin key for ``seismo demo`` and return the token to print."""
    _, token = KeyStore(keys_path(settings)).create(name, Role.ADMIN)
    return token


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(1)


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Option(help="Who or what the key is for (shown by `list`).")],
    role: Annotated[Role, typer.Option(help="viewer: incident tools; investigator: + live source "
                                       "tools; admin: + record_feedback.")] = Role.VIEWER,
    rate: Annotated[float | None, typer.Option(help="Calls per minute for this key.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create a key and print it once (only its hash is stored)."""
    try:
        key, token = KeyStore(keys_path()).create(name, role, rate)
    except (KeyFileError, OSError) as exc:
        raise _fail(str(exc)) from None
    if as_json:
        out.print_json(json.dumps({"id": key.id, "role": key.role, "key": token}))
        return
    out.print(f"key {key.id} ({key.role}) for {escape(name)}:\n{token}")
    out.print("Send it as `Authorization: Bearer <key>`; it is not shown again.")


@keys_app.command("list")
def list_keys(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List keys (ids, names, roles, state); never the secrets."""
    try:
        keys = KeyStore(keys_path()).keys()
    except KeyFileError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        out.print_json(json.dumps([{k: v for k, v in asdict(key).items() if k != "hash"} for key in keys]))
        return
    if not keys:
        out.print("no keys yet: `seismo keys create --name NAME --role viewer`")
    for key in keys:
        state = f"revoked {key.revoked_at}" if key.revoked_at else "active"
        out.print(f"{key.id}  {key.role:<12}  {escape(key.name)}  created {key.created_at}  {state}")


@keys_app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="The id `list` shows.")]) -> None:
    """Revoke a key; running gateways refuse it from its next call on."""
    try:
        key = KeyStore(keys_path()).revoke(key_id)
    except KeyError:
        raise _fail(f"no key with id {key_id!r}: `seismo keys list` shows the ids") from None
    except (KeyFileError, OSError) as exc:
        raise _fail(str(exc)) from None
    out.print(f"key {key.id} revoked at {key.revoked_at}")
