"""Every composed method through the three framework adapters (sync and async): same order and scores as bare."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from methods_toys import LengthReranker, OverlapReranker, TableEmbedder, pairwise_llm, score_reading_llm

from rerank_plugins import Candidate, Reranker
from rerank_plugins.rankers.cascade import CascadeReranker
from rerank_plugins.rankers.e2rank import E2RankReranker
from rerank_plugins.rankers.fusion import FusionReranker
from rerank_plugins.rankers.insertrank import InsertRankReranker
from rerank_plugins.rankers.pairwise import PairwiseReranker
from rerank_plugins.rankers.prf_text import TextPRFReranker
from rerank_plugins.rankers.prf_vector import VectorPRFReranker
from rerank_plugins.testing.conformance import sample_candidates

QUERY = "What causes shock waves around supersonic aircraft?"

METHODS: dict[str, Callable[[], Reranker]] = {
    "fusion": lambda: FusionReranker([OverlapReranker(), LengthReranker()], include_first_stage="order"),
    "cascade": lambda: CascadeReranker([(OverlapReranker(), 4), (LengthReranker(), 2)]),
    "prf-vector": lambda: VectorPRFReranker(TableEmbedder(normalize=True)),
    "prf-text": lambda: TextPRFReranker(OverlapReranker(), feedback_docs=2),
    "e2rank": lambda: E2RankReranker(TableEmbedder(normalize=True), num_input_docs=3),
    "insertrank": lambda: InsertRankReranker(score_reading_llm(), mode="first", window_size=4, stride=2),
    "pairwise": lambda: PairwiseReranker(pairwise_llm(bias=1.0), method="heap", top_k_settle=3),
}


def bare(reranker: Reranker, with_scores: bool) -> Any:
    cands = [
        Candidate(id=c.id, text=c.text, score=c.score if with_scores else None) for c in sample_candidates()
    ]
    return reranker.rerank(QUERY, cands, top_k=5)


@pytest.mark.parametrize("asynchronous", [False, True])
@pytest.mark.parametrize("method", sorted(METHODS))
def test_llamaindex(method: str, asynchronous: bool) -> None:
    pytest.importorskip("llama_index.core")
    from llama_index.core.schema import NodeWithScore, TextNode
    from llama_index.postprocessor.rerank_plugins import RerankPluginsRerank

    reranker = METHODS[method]()
    expected = bare(reranker, with_scores=True)
    post = RerankPluginsRerank(model=reranker, top_n=5)
    nodes = [NodeWithScore(node=TextNode(id_=c.id, text=c.content), score=c.score) for c in sample_candidates()]
    out = (
        asyncio.run(post.apostprocess_nodes(nodes, query_str=QUERY))
        if asynchronous
        else post.postprocess_nodes(nodes, query_str=QUERY)
    )
    assert [n.node.node_id for n in out] == expected.ids
    assert [n.score for n in out] == pytest.approx(expected.scores, abs=1e-6)


@pytest.mark.parametrize("asynchronous", [False, True])
@pytest.mark.parametrize("method", sorted(METHODS))
def test_haystack(method: str, asynchronous: bool) -> None:
    pytest.importorskip("haystack")
    from haystack import Document
    from haystack_integrations.components.rankers.rerank_plugins import RerankPluginsRanker

    reranker = METHODS[method]()
    expected = bare(reranker, with_scores=True)
    ranker = RerankPluginsRanker(model=reranker, top_k=5)
    ranker.warm_up()
    docs = [Document(id=c.id, content=c.content, score=c.score) for c in sample_candidates()]
    out = (
        asyncio.run(ranker.run_async(query=QUERY, documents=docs))["documents"]
        if asynchronous
        else ranker.run(query=QUERY, documents=docs)["documents"]
    )
    assert [d.id for d in out] == expected.ids
    assert [d.score for d in out] == pytest.approx(expected.scores, abs=1e-6)


@pytest.mark.parametrize("asynchronous", [False, True])
@pytest.mark.parametrize("method", sorted(METHODS))
def test_langchain(method: str, asynchronous: bool) -> None:
    pytest.importorskip("langchain_core")
    from langchain_core.documents import Document
    from langchain_rerank_plugins import RerankPluginsCompressor

    reranker = METHODS[method]()
    expected = bare(reranker, with_scores=False)  # LangChain documents carry no retriever score
    compressor = RerankPluginsCompressor(model=reranker, top_n=5)
    docs = [Document(id=c.id, page_content=c.content) for c in sample_candidates()]
    out = (
        asyncio.run(compressor.acompress_documents(docs, QUERY))
        if asynchronous
        else compressor.compress_documents(docs, QUERY)
    )
    assert [d.id for d in out] == expected.ids
    assert [d.metadata["relevance_score"] for d in out] == pytest.approx(expected.scores, abs=1e-6)
