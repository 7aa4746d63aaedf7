"""The public API as users and type checkers read it: ``rerank_plugins.<Name>`` for every lazy export, the
``TYPE_CHECKING`` imports beside ``_LAZY`` naming the same classes, and mypy flagging a misspelt option."""

from __future__ import annotations

import ast
import inspect
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import rerank_plugins

PACKAGE = Path(rerank_plugins.__file__).parent
ROOT = PACKAGE.parent


def _type_checking_imports() -> dict[str, str]:
    """``name -> module`` of the imports under ``if TYPE_CHECKING:`` in ``rerank_plugins/__init__.py``."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    out: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom) and imp.level == 1, ast.dump(imp)
                for alias in imp.names:
                    out[alias.asname or alias.name] = f"rerank_plugins.{imp.module}"
    return out


def test_type_checking_imports_lazy_exports_and_all_agree() -> None:
    lazy = dict(rerank_plugins._LAZY)
    assert _type_checking_imports() == lazy
    assert set(lazy) <= set(rerank_plugins.__all__)
    assert len(rerank_plugins.__all__) == len(set(rerank_plugins.__all__))


@pytest.mark.parametrize("name", sorted(rerank_plugins._LAZY))
def test_every_lazy_export_resolves_to_its_module(name: str) -> None:
    value = getattr(rerank_plugins, name)
    assert value.__module__ == rerank_plugins._LAZY[name]
    assert value.__name__ == name


def test_the_encoder_families_are_exported() -> None:
    """Registered strategies that were reachable only through load_reranker (an AttributeError before)."""
    from rerank_plugins.rankers.late_interaction import ColBERTReranker
    from rerank_plugins.rankers.seq2seq import DuoT5Reranker, MonoT5Reranker

    assert rerank_plugins.MonoT5Reranker is MonoT5Reranker
    assert rerank_plugins.DuoT5Reranker is DuoT5Reranker
    assert rerank_plugins.ColBERTReranker is ColBERTReranker


def test_no_public_constructor_types_model_as_any() -> None:
    """``model: str | ModelRef | PathLike | Any`` reads as ``Any``: every exported class spells what it accepts."""
    checked, loose = [], []
    for name in sorted(rerank_plugins._LAZY):
        value = getattr(rerank_plugins, name)
        if not isinstance(value, type):
            continue
        model = inspect.signature(value.__init__).parameters.get("model")
        if model is None or model.annotation is inspect.Parameter.empty:
            continue
        checked.append(name)
        if re.search(r"\bAny\b", str(model.annotation)):
            loose.append(f"{name}(model: {model.annotation})")
    assert loose == []
    assert {"CrossEncoderReranker", "EmbeddingReranker", "MonoT5Reranker", "VectorPRFReranker"} <= set(checked)


# Lines ending in "# E" must be flagged by mypy, and only those.
_SNIPPET = '''\
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import rerank_plugins
from rerank_plugins import (
    ColBERTReranker,
    CrossEncoderReranker,
    EmbeddingReranker,
    MonoT5Reranker,
    VectorPRFReranker,
)


class Loaded:
    def eval(self) -> Loaded:
        return self


class Embedder:
    def embed_queries(self, texts: Sequence[str]) -> Any:
        return texts

    def embed_documents(self, texts: Sequence[str]) -> Any:
        return texts


def build() -> None:
    CrossEncoderReranker("x", max_lenght=5)  # E
    CrossEncoderReranker(42)  # E
    rerank_plugins.CrossEncoderReranker("x", max_length="5")  # E
    MonoT5Reranker(["castorini/monot5-base-msmarco"])  # E
    CrossEncoderReranker("x", max_length=5)
    rerank_plugins.CrossEncoderReranker("minilm-ce", batch_size=8)
    EmbeddingReranker(Loaded())
    VectorPRFReranker(Embedder())
    VectorPRFReranker(model="minilm")
    MonoT5Reranker("castorini/monot5-base-msmarco")
    ColBERTReranker("lightonai/colbertv2.0")
    rerank_plugins.DuoT5Reranker("castorini/duot5-base-msmarco")
'''


@pytest.mark.slow  # mypy analyses the whole package: over a minute without a warm cache
def test_mypy_reads_the_public_api(tmp_path: Path) -> None:
    snippet = tmp_path / "use_api.py"
    snippet.write_text(_SNIPPET)
    expected = {i for i, line in enumerate(_SNIPPET.splitlines(), start=1) if line.endswith("# E")}
    env = {**os.environ, "MYPYPATH": str(ROOT)}
    out = subprocess.run(
        [
            sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
            "--cache-dir", str(ROOT / ".mypy_cache"), "--no-error-summary", "--hide-error-context",
            str(snippet),
        ],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )
    flagged = {int(m.group(1)) for m in re.finditer(r"use_api\.py:(\d+): error", out.stdout)}
    assert flagged == expected, textwrap.indent(out.stdout + out.stderr, "  ")
    assert 'Unexpected keyword argument "max_lenght"' in out.stdout
