"""docs/frameworks.md: every framework snippet runs as written, offline (issue 13: the LlamaIndex one needed an
OpenAI LLM and ``index`` was never defined)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "frameworks.md"
BLOCKS = {m.group(1).splitlines()[0]: m.group(1) for m in re.finditer(r"```python\n(.*?)```", DOC.read_text(), re.S)}
NEEDS = {"# LlamaIndex": "llama_index.postprocessor.rerank_plugins",
         "# Haystack": "haystack_integrations.components.rankers.rerank_plugins",
         "# LangChain": "langchain_rerank_plugins"}


@pytest.mark.parametrize("title", sorted(NEEDS))
def test_snippet_runs_as_written(title: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    pytest.importorskip(NEEDS[title])
    if title == "# LangChain":
        pytest.importorskip("langchain_classic")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # an OpenAI default LLM would fail here, as it does offline
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(BLOCKS[title], f"{DOC}:{title}", "exec"), {"__name__": "__snippet__"})
    printed = out.getvalue()
    assert "flutter" in printed.splitlines()[-1].split(",")[0]  # the best document is about flutter
