"""The ``rerank-plugins`` command line: one entry point, one module per command under ``commands/``.

Each command module exposes ``register(app)``; the heavy work is imported inside the command function so
``rerank-plugins --help`` stays fast.

Errors are printed plainly (``Usage: ...`` then ``Error: <message>`` on one line), never in a rich panel: a
panel is wrapped to the terminal width (80 columns when output goes to a file), which splits messages across
lines and box borders, so logs could not be searched and tests depended on the terminal (issue 13). Help stays
rich. Boolean flags show no ``<bool>`` type in the help (a flag takes no value).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

# typer >= 0.22 vendors click (``typer._click``), older typer uses click itself: take the exception classes from
# the module typer's own BadParameter comes from, so both work.
_ClickException: type[Exception] = sys.modules[typer.BadParameter.__module__].ClickException

__all__ = ["app", "build", "main"]


def _plain_flags(command: Any, ctx: Any) -> None:
    """Give every boolean flag an empty metavar, so typer's help shows no ``<bool>`` value for it."""
    for param in command.get_params(ctx):
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""


class PlainErrorGroup(TyperGroup):
    """typer's group, with click's plain one-line error messages instead of rich panels."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except _ClickException as exc:
            exc.show()  # type: ignore[attr-defined]
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        # with standalone_mode=False an Exit (``--help``, ``typer.Exit(2)``) comes back as its exit code
        sys.exit(rv if isinstance(rv, int) and not isinstance(rv, bool) else 0)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _plain_flags(command, ctx)
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _plain_flags(self, ctx)
        super().format_help(ctx, formatter)


app = typer.Typer(
    name="rerank-plugins",
    cls=PlainErrorGroup,
    help="Rerank retrieved candidates with research-grade rerankers; evaluate, benchmark and serve them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"rerank-plugins {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit"),
    ] = False,
) -> None:
    """Rerank retrieved candidates with research-grade rerankers; evaluate, benchmark and serve them."""


#: Command modules, registered in this order (each defines ``register(app: typer.Typer) -> None``).
COMMAND_MODULES = [
    "rerank_plugins.commands.rerank",
    "rerank_plugins.commands.demo",
    "rerank_plugins.commands.eval",
    "rerank_plugins.commands.bench",
    "rerank_plugins.commands.serve",
    "rerank_plugins.commands.batch",
    "rerank_plugins.commands.models",
]

_registered = False


def build() -> typer.Typer:
    global _registered
    if not _registered:
        for name in COMMAND_MODULES:
            importlib.import_module(name).register(app)
        _registered = True
    return app


def main() -> None:
    build()()


if __name__ == "__main__":  # pragma: no cover
    main()
