"""Smoke tests: each framework example runs end to end on the real FAQ data with the real bundled models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("script", "framework_module"),
    [
        ("llamaindex_faiss.py", "llama_index.vector_stores.faiss"),
        ("haystack_bm25.py", "haystack"),
        ("langchain_faiss.py", "langchain_community"),
    ],
)
def test_example_runs(script: str, framework_module: str) -> None:
    pytest.importorskip(framework_module)
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--queries", "1", "--candidates", "5", "--top-n", "3"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "first stage" in out and "after reranking" in out
    assert "MRR@3 over 1 queries" in out
