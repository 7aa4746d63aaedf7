"""Test helper: the Haystack ranker seen through the core ``rerank(query, candidates, ...)`` contract.

Candidates become haystack ``Document`` objects, the component runs (``run`` or ``run_async``), and the returned
documents are turned back into a :class:`RankedList`, dropping exactly the meta keys the adapter documents as added.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from haystack import Document
from haystack_integrations.components.rankers.rerank_plugins import RerankPluginsRanker

from rerank_plugins import Candidate, RankedList, Reranker, ScoredCandidate
from rerank_plugins.integration import RANK_KEY, RESULT_KEYS
from rerank_plugins.types import as_query


def to_document(c: Candidate) -> Document:
    return Document(id=c.id, content=c.text, meta=dict(c.metadata), score=c.score)


class HaystackHost:
    def __init__(self, reranker: Reranker, *, asynchronous: bool = False) -> None:
        self.ranker = RerankPluginsRanker(model=reranker)
        self.asynchronous = asynchronous

    def rerank(
        self, query: Any, candidates: Sequence[Any], top_k: int | None = None, score_threshold: float | None = None
    ) -> RankedList:
        docs = [to_document(c) if isinstance(c, Candidate) else c for c in candidates]
        if self.asynchronous:
            out = asyncio.run(
                self.ranker.run_async(query=query, documents=docs, top_k=top_k, score_threshold=score_threshold)
            )
        else:
            out = self.ranker.run(query=query, documents=docs, top_k=top_k, score_threshold=score_threshold)
        return back(query, docs, out["documents"])


def back(query: Any, docs: Sequence[Document], out: Sequence[Document]) -> RankedList:
    position = {d.id: i for i, d in enumerate(docs)}
    results = [
        ScoredCandidate(
            candidate=Candidate(
                id=d.id, text=d.content, metadata={k: v for k, v in d.meta.items() if k not in RESULT_KEYS}
            ),
            score=d.score,  # type: ignore[arg-type]
            rank=d.meta[RANK_KEY],
            original_position=position[d.id],
        )
        for d in out
    ]
    return RankedList(query=as_query(query), results=tuple(results))
