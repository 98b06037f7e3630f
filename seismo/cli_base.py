"""The typer classes behind every ``seismo`` command: one error style and plain help.

* :class:`SeismoGroup` turns click's usage errors and the exceptions of
  :func:`seismo.cliutil.describe_exception` into one ``error:`` line and an exit code;
  anything else is a bug and says so (``SEISMO_DEBUG=1`` shows its traceback).
* Help shows ``FILE`` (not ``{FILE}``) in usage lines and no ``<bool>`` after flags,
  which take no value.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer

# typer ≥ 0.2x runs on its own copy of click; its exceptions are these, not the click package's.
from typer._click.core import Context, Parameter
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
from typer.core import TyperCommand, TyperGroup, TyperOption

from seismo.cliutil import EXIT_BUG, EXIT_FAILED, EXIT_USAGE, debug_enabled, describe_exception, print_error


def _plain(params: list[Parameter]) -> list[Parameter]:
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""  # typer writes <bool> after a flag, which takes no value
    return params


def _usage(pieces: list[str]) -> list[str]:
    return [p[1:-1] if p.startswith("{") and p.endswith("}") else p for p in pieces]


class SeismoCommand(TyperCommand):
    """A command whose help reads like the README: ``seismo ingest [OPTIONS] FILE``."""

    def get_params(self, ctx: Context) -> list[Parameter]:
        return _plain(super().get_params(ctx))

    def collect_usage_pieces(self, ctx: Context) -> list[str]:
        return _usage(super().collect_usage_pieces(ctx))


class SeismoGroup(TyperGroup):
    """A typer group whose errors, usage errors included, are one ``error:`` line each."""

    def get_params(self, ctx: Context) -> list[Parameter]:
        return _plain(super().get_params(ctx))

    def make_context(self, info_name: str | None, args: list[str], parent: Context | None = None,
                     **extra: Any) -> Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except NoArgsIsHelpError:
            raise
        except ClickException as exc:
            raise _usage_error(exc) from None

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, NoArgsIsHelpError):
            raise
        except BrokenPipeError:
            # The reader went away (`seismo detect big.csv | head`): stop quietly, as Unix tools do.
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - Python flushes stdout at exit
            raise typer.Exit(EXIT_FAILED) from None
        except ClickException as exc:
            raise _usage_error(exc) from None
        except Exception as exc:
            known = describe_exception(exc)
            if known is not None:
                print_error(known[0])
                raise typer.Exit(known[1]) from None
            if debug_enabled():
                raise
            print_error(f"unexpected {type(exc).__name__}: {exc}. This is a bug in Seismo; please report "
                        "it with the output of the same command run with SEISMO_DEBUG=1")
            raise typer.Exit(EXIT_BUG) from None


def _usage_error(exc: ClickException) -> typer.Exit:
    ctx = getattr(exc, "ctx", None)
    where = ctx.command_path if ctx is not None else "seismo"
    hint = f"; see `{where} --help`" if isinstance(exc, UsageError) else ""
    print_error(f"{where}: {exc.format_message().rstrip('.')}{hint}")
    return typer.Exit(exc.exit_code if isinstance(exc, UsageError) else EXIT_USAGE)
