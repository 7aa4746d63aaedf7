"""``rerank-plugins models``: every recipe hub id with its family, strategy and reference, and the bundled models;
the default output fits the terminal (``COLUMNS``, 80 without one), ``--format markdown`` pads its tables."""

from __future__ import annotations

import json

import pytest

typer = pytest.importorskip("typer")
from typer.testing import CliRunner  # noqa: E402

from rerank_plugins import cli  # noqa: E402
from rerank_plugins.models import bundled_models  # noqa: E402
from rerank_plugins.recipes import get_recipe, recipes  # noqa: E402

#: the longest hub id listed (44 characters with its indent) is never split, so widths from 50 up fit exactly
LONGEST_ID = max(len(hub_id) for r in recipes().values() for hub_id in r.ids)


def _run(*args: str, columns: str | None = None):
    # COLUMNS=None unsets it: CliRunner's stdout is no terminal, so the width is then the default 80
    return CliRunner().invoke(cli.build(), ["models", *args], env={"COLUMNS": columns})


@pytest.mark.parametrize(("columns", "width"), [(None, 80), ("", 80), ("80", 80), ("50", 50), ("132", 132)])
def test_default_output_fits_the_terminal(columns: str | None, width: int) -> None:
    result = _run(columns=columns)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    too_long = [line for line in lines if len(line) > width]
    assert not too_long, f"{len(too_long)} of {len(lines)} lines over {width} characters: {too_long[:3]}"
    assert "|" not in result.stdout.replace("\\|", "")  # not a table
    for recipe in recipes().values():
        for hub_id in recipe.ids:
            assert f"  {hub_id}" in lines  # one id per line, whole: copyable
        if width >= 80:
            assert f"  strategy: {recipe.kind}, recipe: {recipe.name}" in lines
    for bundled in bundled_models().values():
        assert bundled.name in lines


def test_only_an_id_longer_than_the_line_overflows_it() -> None:
    width = LONGEST_ID  # narrower than the longest id with its two-space indent
    ids = {f"  {hub_id}" for r in recipes().values() for hub_id in r.ids}
    lines = _run(columns=str(width)).stdout.splitlines()
    over = [line for line in lines if len(line) > width]
    assert over and set(over) <= ids  # long paths in references are split, hub ids never


def test_markdown_is_padded_and_lists_every_recipe_id_and_the_bundled_models() -> None:
    result = _run("--format", "markdown", columns="80")
    assert result.exit_code == 0, result.output
    tables: list[list[str]] = [[]]
    for line in result.stdout.splitlines():
        if line.startswith("|"):
            tables[-1].append(line)
        elif tables[-1]:
            tables.append([])
    tables = [t for t in tables if t]
    assert len(tables) == 2
    for table in tables:
        assert len({len(line) for line in table}) == 1, "columns are padded to one width"
        assert set(table[1]) <= {"|", "-", " "}
    cells = [[c.strip() for c in line.strip("|").split(" | ")] for line in tables[0][2:]]
    for recipe in recipes().values():
        for hub_id in recipe.ids:
            assert [hub_id, recipe.family, recipe.kind, recipe.reference.replace("|", "\\|")] in cells
    assert "FlagEmbedding==1.4.2" in result.stdout
    assert any(line.startswith("| minilm ") and "| embedding " in line for line in tables[1])


def test_json_and_family_filter() -> None:
    result = _run("--format", "json", "--family", "mxbai-rerank v2")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {r["id"] for r in data["recipes"]} == {
        "mixedbread-ai/mxbai-rerank-base-v2", "mixedbread-ai/mxbai-rerank-large-v2"
    }
    assert all(r["strategy"] == "yes-no" and "mxbai-rerank==0.1.6" in r["reference"] for r in data["recipes"])
    assert any(b["name"] == "minilm" for b in data["bundled"])
    text = _run("--family", "qwen3").stdout.splitlines()
    assert "  Qwen/Qwen3-Reranker-8B" in text and "  BAAI/bge-reranker-v2-gemma" not in text
    bad = _run("--format", "yaml")
    assert bad.exit_code == 2 and "text, markdown, json" in bad.stderr


@pytest.mark.parametrize("output_format", ["text", "markdown", "json"])
def test_a_family_that_matches_nothing_is_an_error_naming_the_families(output_format: str) -> None:
    result = _run("--family", "nomatch", "--format", output_format)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "no recipe family contains 'nomatch'" in result.stderr
    for recipe in recipes().values():
        assert recipe.family in result.stderr


def test_references_cite_the_source_not_a_test_file() -> None:
    qwen3 = get_recipe("qwen3-reranker")
    assert "https://huggingface.co/Qwen/Qwen3-Reranker-0.6B" in qwen3.reference
    assert "model card" in qwen3.reference
    for recipe in recipes().values():
        assert "tests/" not in recipe.reference, recipe.name
    assert "  reference: " + qwen3.reference in "\n".join(
        _run("--family", "Qwen3", columns="200").stdout.splitlines()
    )
