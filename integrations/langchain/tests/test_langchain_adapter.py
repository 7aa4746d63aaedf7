"""RerankPluginsCompressor: conformance through LangChain, parity, ContextualCompressionRetriever and LCEL."""

from __future__ import annotations

import asyncio
import copy
import os
from typing import Any

import pytest
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.runnables import RunnableLambda, RunnableParallel, RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_host import LangChainHost, to_document
from langchain_rerank_plugins import RELEVANCE_SCORE_KEY, RerankPluginsCompressor

import rerank_plugins.models as models
from rerank_plugins import Candidate, ConfigError, InvalidInputError
from rerank_plugins.models import StrategySpec
from rerank_plugins.testing.adapter_kinds import host_conformance
from rerank_plugins.testing.conformance import sample_candidates
from rerank_plugins.testing.rerankers import KeywordReranker

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

QUERY = "What causes shock waves around supersonic aircraft?"


@pytest.fixture(autouse=True)
def keyword_strategy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test-only strategy name for configuring adapters by name, registered only while a test runs."""
    spec = StrategySpec("keyword", "rerank_plugins.testing.rerankers:KeywordReranker", "test", needs_model=False)
    monkeypatch.setitem(models._STRATEGIES, "keyword", spec)


TestConformanceSync, TestConformanceAsync, TestConformanceListwise = host_conformance(LangChainHost)


def _docs(n: int = 6) -> list[Document]:
    return [to_document(c) for c in sample_candidates(n)]


def _check_parity(bare: Any, out: list[Document]) -> None:
    assert [d.id for d in out] == bare.ids
    scores = [d.metadata[RELEVANCE_SCORE_KEY] for d in out]
    assert scores == pytest.approx(bare.scores, abs=1e-6)
    assert all(type(s) is float for s in scores)


@pytest.mark.parametrize("asynchronous", [False, True])
@pytest.mark.parametrize(("top_n", "threshold"), [(None, None), (3, None), (None, 0.3), (2, 0.0)])
def test_parity_with_bare_engine(asynchronous: bool, top_n: int | None, threshold: float | None) -> None:
    engine = KeywordReranker()
    bare = engine.rerank(QUERY, sample_candidates(), top_n, threshold)
    compressor = RerankPluginsCompressor(model=engine, top_n=top_n, score_threshold=threshold)
    if asynchronous:
        out = asyncio.run(compressor.acompress_documents(_docs(), QUERY))
        assert engine.async_calls == 1 and engine.sync_calls == 1  # the bare call above
    else:
        out = compressor.compress_documents(_docs(), QUERY)
    _check_parity(bare, list(out))


def test_configured_by_name_with_options_built_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    real = models.load_reranker  # the one loader behind integration.build_reranker
    monkeypatch.setattr(models, "load_reranker", lambda *a, **k: calls.append(a) or real(*a, **k))
    compressor = RerankPluginsCompressor(model="keyword", options={"reasoning": False}, top_n=2)
    for _ in range(3):
        out = compressor.compress_documents(_docs(), QUERY)
    assert len(calls) == 1 and len(out) == 2
    assert isinstance(compressor.reranker, KeywordReranker) and "rerank_reasoning" not in out[0].metadata
    with pytest.raises(ConfigError, match="already-built"):
        RerankPluginsCompressor(model=KeywordReranker(), kind="embedding")


def test_documents_copied_ids_kept_inputs_untouched() -> None:
    docs = _docs()
    before = copy.deepcopy([d.model_dump() for d in docs])
    out = RerankPluginsCompressor(model=KeywordReranker()).compress_documents(docs, QUERY)
    assert [d.model_dump() for d in docs] == before
    assert {id(d) for d in out}.isdisjoint(id(d) for d in docs)
    assert sorted(d.id for d in out) == sorted(d.id for d in docs)  # type: ignore[type-var]
    assert all(d.metadata["source"] == "conformance" for d in out)


def test_documents_without_ids_get_positions_and_come_back_once() -> None:
    docs = [Document(page_content=c.content, metadata={"k": c.id}) for c in sample_candidates()]
    out = RerankPluginsCompressor(model=KeywordReranker()).compress_documents(docs, QUERY)
    assert sorted(d.metadata["k"] for d in out) == sorted(d.metadata["k"] for d in docs)
    assert all(d.id is None for d in out)


def test_reasoning_and_window_traces_reach_metadata() -> None:
    engine = KeywordReranker()
    bare = engine.rerank(QUERY, sample_candidates())
    out = RerankPluginsCompressor(model=engine).compress_documents(_docs(), QUERY)
    for d, r in zip(out, bare.results):
        assert d.metadata["rerank_reasoning"] == r.reasoning
        assert d.metadata["rerank_details"] == dict(r.details)
        assert d.metadata["rerank_windows"][0]["output_ids"] == bare.ids


def test_empty_content_empty_list_top_n_threshold() -> None:
    engine = KeywordReranker(offset=-0.5)
    docs = [*_docs(3), Document(id="empty", page_content="")]
    out = RerankPluginsCompressor(model=engine).compress_documents(docs, QUERY)
    assert sorted(d.id for d in out) == sorted(d.id for d in docs)  # type: ignore[type-var]
    assert RerankPluginsCompressor(model=engine).compress_documents([], QUERY) == []
    assert RerankPluginsCompressor(model=engine, top_n=0).compress_documents(docs, QUERY) == []
    with pytest.raises(ValueError):
        RerankPluginsCompressor(model=engine, top_n=-1)
    bare = engine.rerank(QUERY, sample_candidates())
    kept = RerankPluginsCompressor(model=engine, score_threshold=0.0).compress_documents(_docs(), QUERY)
    assert [d.id for d in kept] == [r.id for r in bare.results if r.score >= 0.0]
    assert 0 < len(kept) < 6
    with pytest.raises(InvalidInputError, match="empty"):
        RerankPluginsCompressor(model=engine).compress_documents(docs, " ")
    with pytest.raises(TypeError, match="langchain Document"):
        RerankPluginsCompressor(model=engine).compress_documents(["text"], QUERY)  # type: ignore[list-item]


def _as_candidates(docs: list[Document]) -> list[Candidate]:
    return [Candidate(id=d.id, text=d.page_content, metadata=d.metadata) for d in docs]  # type: ignore[arg-type]


def _retriever() -> Any:
    store = InMemoryVectorStore(embedding=DeterministicFakeEmbedding(size=16))
    store.add_documents(_docs())
    return store.as_retriever(search_kwargs={"k": 6})


def test_inside_contextual_compression_retriever() -> None:
    engine = KeywordReranker()
    retriever = ContextualCompressionRetriever(
        base_compressor=RerankPluginsCompressor(model=engine, top_n=3), base_retriever=_retriever()
    )
    retrieved = _retriever().invoke(QUERY)
    assert len(retrieved) == 6
    bare = engine.rerank(QUERY, _as_candidates(retrieved), top_k=3)  # ties keep the retriever's order
    out = retriever.invoke(QUERY)
    _check_parity(bare, out)
    out_async = asyncio.run(retriever.ainvoke(QUERY))
    _check_parity(bare, out_async)
    assert engine.async_calls == 1


def test_in_a_plain_lcel_chain() -> None:
    compressor = RerankPluginsCompressor(model=KeywordReranker(), top_n=2)

    async def arerank(x: dict[str, Any]) -> Any:
        return await compressor.acompress_documents(x["docs"], x["query"])

    chain = RunnableParallel(docs=_retriever(), query=RunnablePassthrough()) | RunnableLambda(
        lambda x: compressor.compress_documents(x["docs"], x["query"]), afunc=arerank
    )
    bare = KeywordReranker().rerank(QUERY, _as_candidates(_retriever().invoke(QUERY)), top_k=2)
    _check_parity(bare, chain.invoke(QUERY))
    _check_parity(bare, asyncio.run(chain.ainvoke(QUERY)))


@pytest.mark.slow
def test_parity_minilm_by_name() -> None:
    compressor = RerankPluginsCompressor(model="minilm")  # the real bundled model, loaded once by name
    bare = compressor.reranker.rerank(QUERY, sample_candidates())
    assert type(compressor.reranker).__name__ == "EmbeddingReranker"
    _check_parity(bare, list(compressor.compress_documents(_docs(), QUERY)))
    _check_parity(bare, list(asyncio.run(compressor.acompress_documents(_docs(), QUERY))))


def test_score_metadata_key_passes_the_retriever_score_on() -> None:
    engine = KeywordReranker()
    docs = [Document(id=f"d{i}", page_content=c.content, metadata={"score": 0.5 - i / 10})
            for i, c in enumerate(sample_candidates(4))]
    docs.append(Document(id="unscored", page_content="shock waves", metadata={}))
    RerankPluginsCompressor(model=engine).compress_documents(docs, QUERY)
    assert [c.score for c in engine.seen] == [None] * 5  # off by default: LangChain has no score field
    RerankPluginsCompressor(model=engine, score_metadata_key="score").compress_documents(docs, QUERY)
    assert [c.score for c in engine.seen][:4] == pytest.approx([0.5, 0.4, 0.3, 0.2])
    assert engine.seen[4].score is None
    docs[2] = Document(id="d2", page_content="x", metadata={"score": "high"})
    with pytest.raises(TypeError, match=r"position 2: metadata\['score'\] must be a number"):
        RerankPluginsCompressor(model=engine, score_metadata_key="score").compress_documents(docs, QUERY)


def test_fusion_with_the_first_stage_score_through_the_compressor() -> None:
    from rerank_plugins.rankers.fusion import FusionReranker

    docs = [Document(id=f"d{i}", page_content=c.content, metadata={"score": float(10 - i)})
            for i, c in enumerate(sample_candidates(6))]
    fusion = FusionReranker([KeywordReranker(reasoning=False, traces=False)], include_first_stage="score")
    bare = fusion.rerank(QUERY, [Candidate(id=d.id or "", text=d.page_content, score=d.metadata["score"])
                                 for d in docs])
    out = RerankPluginsCompressor(model=fusion, score_metadata_key="score").compress_documents(docs, QUERY)
    assert [d.id for d in out] == bare.ids
    assert [d.metadata[RELEVANCE_SCORE_KEY] for d in out] == pytest.approx(bare.scores, abs=1e-9)


def test_best_chunk_metadata_takes_the_prefix(tmp_path) -> None:
    """prefix_metadata is put before best_chunk too, as before every key the adapter adds (issue 20)."""
    pytest.importorskip("torch")
    from rerank_plugins.models import load_reranker
    from rerank_plugins.testing.tiny_models import build_tiny_cross_encoder

    path = str(build_tiny_cross_encoder(tmp_path / "ce"))
    options = {"long_documents": "chunk", "max_chunks": 3, "max_length": 40}
    docs = [Document(id="a", page_content="shock waves and supersonic flow . " * 30),
            Document(id="b", page_content="x")]
    bare = load_reranker(path, **options).rerank(QUERY, [Candidate(id=d.id, text=d.page_content) for d in docs])
    out = RerankPluginsCompressor(model=path, options=options, prefix_metadata="rp_").compress_documents(docs, QUERY)
    assert [d.metadata["rp_best_chunk"] for d in out] == [dict(r.details["best_chunk"]) for r in bare.results]
    assert all("best_chunk" not in d.metadata for d in out)
