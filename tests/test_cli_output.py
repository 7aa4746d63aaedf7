"""The command line's own output: plain one-line errors at any terminal width, ``--version``, flags in help."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from rerank_plugins import __version__, cli


@pytest.mark.parametrize("env", [{"COLUMNS": "30", "TERM": "xterm"}, {"COLUMNS": "", "TERM": "dumb"}])
def test_errors_are_one_plain_line_at_any_width(tmp_path: Path, env: dict[str, str]) -> None:
    missing = tmp_path / "a-rather-long-directory-name" / "candidates-that-do-not-exist.jsonl"
    result = CliRunner().invoke(cli.build(), ["rerank", "-m", "minilm", "-q", "q", "-i", str(missing)], env=env)
    assert result.exit_code == 2
    line = next(x for x in result.stderr.splitlines() if x.startswith("Error:"))
    assert f"{missing} does not exist or is not a file" in line  # not wrapped, not inside a box
    assert "╭" not in result.stderr and "│" not in result.stderr


def test_version() -> None:
    result = CliRunner().invoke(cli.build(), ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"rerank-plugins {__version__}"


@pytest.mark.parametrize("command", [[], *([name] for name in ("rerank", "demo", "eval", "bench", "serve", "batch"))])
def test_help_shows_no_bool_type_for_flags(command: list[str]) -> None:
    result = CliRunner().invoke(cli.build(), [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "--help" in result.stdout and "<bool>" not in result.stdout
