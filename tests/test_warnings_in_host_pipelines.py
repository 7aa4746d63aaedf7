"""Warnings raised while a host framework runs our adapter point at the user's line (issue 21 item 20).

docs/quickstart.md says library warnings point at your own line. Called through a Haystack ``Pipeline``, a
LlamaIndex query engine or a LangChain ``ContextualCompressionRetriever``, the truncation warning named
``haystack/core/pipeline/pipeline.py``, ``llama_index_instrumentation/dispatcher.py`` and
``contextual_compression.py``: the first frame outside our packages was the host's. Now the host's frames are
skipped too when the call came through an adapter.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rerank_plugins import load_reranker

LONG = "wing flutter " * 100


@pytest.fixture(scope="module")
def reranker(tmp_path_factory: pytest.TempPathFactory) -> Any:
    pytest.importorskip("torch")
    from rerank_plugins.testing.tiny_models import build_tiny_cross_encoder

    folder = build_tiny_cross_encoder(tmp_path_factory.mktemp("ce"))
    return load_reranker(str(folder), kind="cross-encoder", max_length=16)


def _where(call: Callable[[], Any]) -> tuple[str, int]:
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        call()
    found = [w for w in record if "truncated" in str(w.message)]
    assert len(found) == 1, [f"{w.filename}:{w.lineno} {w.message}" for w in record]
    return found[0].filename, found[0].lineno


def _line_of(marker: str) -> int:
    source, start = inspect.getsourcelines(inspect.getmodule(_line_of))  # type: ignore[arg-type]
    return next(i for i, line in enumerate(source, start or 1) if marker in line and "_line_of" not in line)


def test_inside_a_haystack_pipeline(reranker: Any) -> None:
    pytest.importorskip("haystack")
    from haystack import Document, Pipeline
    from haystack_integrations.components.rankers.rerank_plugins import RerankPluginsRanker

    pipe = Pipeline()
    pipe.add_component("ranker", RerankPluginsRanker(model=reranker))
    docs = [Document(content=LONG), Document(content="b")]
    where = _where(lambda: pipe.run({"ranker": {"query": "q", "documents": docs}}))  # haystack-call
    assert where == (__file__, _line_of("# haystack-call"))


def test_inside_a_langchain_retriever(reranker: Any) -> None:
    pytest.importorskip("langchain_classic")
    from langchain_classic.retrievers import ContextualCompressionRetriever
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from langchain_core.vectorstores import InMemoryVectorStore
    from langchain_rerank_plugins import RerankPluginsCompressor

    store = InMemoryVectorStore.from_texts([LONG, "b"], DeterministicFakeEmbedding(size=8))
    retriever = ContextualCompressionRetriever(
        base_compressor=RerankPluginsCompressor(model=reranker), base_retriever=store.as_retriever()
    )
    where = _where(lambda: retriever.invoke("q"))  # langchain-call
    assert where == (__file__, _line_of("# langchain-call"))


def test_inside_a_llamaindex_query_engine(reranker: Any) -> None:
    pytest.importorskip("llama_index.core")
    from llama_index.core import Document, VectorStoreIndex
    from llama_index.core.embeddings import MockEmbedding
    from llama_index.core.llms import MockLLM
    from llama_index.postprocessor.rerank_plugins import RerankPluginsRerank

    index = VectorStoreIndex.from_documents([Document(text=LONG), Document(text="b")],
                                            embed_model=MockEmbedding(embed_dim=8))
    engine = index.as_query_engine(llm=MockLLM(), similarity_top_k=2,
                                   node_postprocessors=[RerankPluginsRerank(model=reranker)])
    where = _where(lambda: engine.query("q"))  # llamaindex-call
    assert where == (__file__, _line_of("# llamaindex-call"))


def test_a_direct_call_still_points_at_its_own_line(reranker: Any) -> None:
    where = _where(lambda: reranker.rerank("q", [LONG, "b"]))  # direct-call
    assert where == (__file__, _line_of("# direct-call"))
    assert Path(where[0]).name == "test_warnings_in_host_pipelines.py"
