"""Test helper: the LangChain compressor seen through the core ``rerank(query, candidates, ...)`` contract.

Candidates become LangChain ``Document`` objects, the compressor runs (sync or async), and the returned documents
are turned back into a :class:`RankedList`, dropping exactly the metadata keys the adapter documents as added.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from langchain_core.documents import Document
from langchain_rerank_plugins import RELEVANCE_SCORE_KEY, RerankPluginsCompressor

from rerank_plugins import Candidate, RankedList, Reranker, ScoredCandidate
from rerank_plugins.integration import RANK_KEY, RESULT_KEYS
from rerank_plugins.types import as_query

ADDED_KEYS = {*RESULT_KEYS, RELEVANCE_SCORE_KEY}


def to_document(c: Candidate) -> Document:
    return Document(id=c.id, page_content=c.content, metadata=dict(c.metadata))


class LangChainHost:
    def __init__(self, reranker: Reranker, *, asynchronous: bool = False) -> None:
        self.reranker = reranker
        self.asynchronous = asynchronous

    def rerank(
        self, query: Any, candidates: Sequence[Any], top_k: int | None = None, score_threshold: float | None = None
    ) -> RankedList:
        docs = [to_document(c) if isinstance(c, Candidate) else c for c in candidates]
        compressor = RerankPluginsCompressor(model=self.reranker, top_n=top_k, score_threshold=score_threshold)
        if self.asynchronous:
            out = asyncio.run(compressor.acompress_documents(docs, query))
        else:
            out = compressor.compress_documents(docs, query)
        return back(query, docs, out)


def back(query: Any, docs: Sequence[Document], out: Sequence[Document]) -> RankedList:
    position = {d.id: i for i, d in enumerate(docs)}
    results = []
    for d in out:
        assert d.id is not None
        results.append(
            ScoredCandidate(
                candidate=Candidate(
                    id=d.id,
                    text=d.page_content,
                    metadata={k: v for k, v in d.metadata.items() if k not in ADDED_KEYS},
                ),
                score=d.metadata[RELEVANCE_SCORE_KEY],
                rank=d.metadata[RANK_KEY],
                original_position=position[d.id],
            )
        )
    return RankedList(query=as_query(query), results=tuple(results))
