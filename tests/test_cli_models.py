"""``rerank-plugins models``: every recipe hub id with its family, strategy and reference, and the bundled models."""

from __future__ import annotations

import json

import pytest

typer = pytest.importorskip("typer")
from typer.testing import CliRunner  # noqa: E402

from rerank_plugins import cli  # noqa: E402
from rerank_plugins.recipes import recipes  # noqa: E402


def _run(*args: str):
    return CliRunner().invoke(cli.build(), ["models", *args])


def test_lists_every_recipe_id_and_the_bundled_models() -> None:
    result = _run()
    assert result.exit_code == 0, result.output
    for recipe in recipes().values():
        for hub_id in recipe.ids:
            assert f"| {hub_id} | {recipe.family} | {recipe.kind} |" in result.stdout
    assert "Qwen/Qwen3-Reranker-8B" in result.stdout and "FlagEmbedding==1.4.2" in result.stdout
    assert "| minilm | embedding |" in result.stdout


def test_json_and_family_filter() -> None:
    result = _run("--format", "json", "--family", "mxbai-rerank v2")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {r["id"] for r in data["recipes"]} == {
        "mixedbread-ai/mxbai-rerank-base-v2", "mixedbread-ai/mxbai-rerank-large-v2"
    }
    assert all(r["strategy"] == "yes-no" and "mxbai-rerank==0.1.6" in r["reference"] for r in data["recipes"])
    assert any(b["name"] == "minilm" for b in data["bundled"])
    bad = _run("--format", "yaml")
    assert bad.exit_code == 2 and "markdown or json" in bad.stderr
