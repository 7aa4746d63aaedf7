"""docs/frameworks.md, "Switching from a host's built-in reranker": the defaults it quotes are the installed
built-ins' own (read from their signatures here) and ours (issue 21 item 20: the built-ins keep 2, 10 or 3
documents, ours keep all; nobody said so)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "frameworks.md"


def _section(host: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("## Switching from a host's built-in reranker")
    part = text[start:]
    match = re.search(rf"^### {host}\n(.*?)(?=^### |\Z)", part, re.M | re.S)
    assert match, f"no migration table for {host}"
    return match.group(1)


def _row(section: str, name: str) -> str:
    return next(line for line in section.splitlines() if line.startswith(f"| {name} |"))


def _default(obj, name: str):
    return inspect.signature(obj).parameters[name].default


def test_llamaindex() -> None:
    sbert = pytest.importorskip("llama_index.core.postprocessor.sbert_rerank")
    ours = pytest.importorskip("llama_index.postprocessor.rerank_plugins")
    section = _section("LlamaIndex")
    assert _default(sbert.SentenceTransformerRerank.__init__, "top_n") == 2
    assert _default(sbert.SentenceTransformerRerank.__init__, "model") in section
    assert ours.RerankPluginsRerank.model_fields["top_n"].default is None
    kept = _row(section, "documents kept")
    assert kept.count("`top_n=2`") == 3 and "`top_n=None`: all" in kept
    assert ours.RerankPluginsRerank.model_fields["keep_retrieval_score"].default is True
    assert _default(sbert.SentenceTransformerRerank.__init__, "keep_retrieval_score") is False


def test_haystack() -> None:
    builtin = pytest.importorskip("haystack_integrations.components.rankers.sentence_transformers")
    ours = pytest.importorskip("haystack_integrations.components.rankers.rerank_plugins")
    section = _section("Haystack")
    init = builtin.SentenceTransformersSimilarityRanker.__init__
    assert _default(init, "top_k") == 10 and _default(init, "scale_score") is True
    assert _default(init, "model") in section
    assert _default(ours.RerankPluginsRanker.__init__, "top_k") is None
    assert _default(ours.RerankPluginsRanker.__init__, "scale_score") is None
    kept = _row(section, "documents kept")
    assert kept.count("`top_k=10`") == 3 and "`top_k=None`: all" in kept
    # every argument name the built-in takes, ours takes too (the row says "the same names")
    theirs = set(inspect.signature(init).parameters) - {"self"}
    assert theirs <= set(inspect.signature(ours.RerankPluginsRanker.__init__).parameters)
    assert "scale_score" in inspect.signature(ours.RerankPluginsRanker.run).parameters


def test_langchain() -> None:
    cross = pytest.importorskip("langchain_classic.retrievers.document_compressors.cross_encoder_rerank")
    flash = pytest.importorskip("langchain_community.document_compressors.flashrank_rerank")
    ours = pytest.importorskip("langchain_rerank_plugins")
    section = _section("LangChain")
    assert cross.CrossEncoderReranker.model_fields["top_n"].default == 3
    assert flash.FlashrankRerank.model_fields["top_n"].default == 3
    assert flash.FlashrankRerank.model_fields["score_threshold"].default == 0.0
    assert f'`model="{flash.DEFAULT_MODEL_NAME}"`' in section
    assert ours.RerankPluginsCompressor.model_fields["top_n"].default is None
    kept = _row(section, "documents kept")
    assert kept.count("`top_n=3`") == 3 and "`top_n=None`: all" in kept
