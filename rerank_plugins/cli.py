"""The ``rerank-plugins`` command line: one entry point, one module per command under ``commands/``.

Each command module exposes ``register(app)``; the heavy work is imported inside the command function so
``rerank-plugins --help`` stays fast.
"""

from __future__ import annotations

import importlib

import typer

__all__ = ["app", "main"]

app = typer.Typer(
    name="rerank-plugins",
    help="Rerank retrieved candidates with research-grade rerankers; evaluate, benchmark and serve them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: Command modules, registered in this order (each defines ``register(app: typer.Typer) -> None``).
COMMAND_MODULES = [
    "rerank_plugins.commands.rerank",
    "rerank_plugins.commands.demo",
    "rerank_plugins.commands.eval",
    "rerank_plugins.commands.bench",
    "rerank_plugins.commands.serve",
    "rerank_plugins.commands.batch",
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
