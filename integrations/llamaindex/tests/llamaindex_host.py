"""Test helper: the LlamaIndex postprocessor seen through the core ``rerank(query, candidates, ...)`` contract.

Candidates become ``NodeWithScore`` objects, the postprocessor runs (sync or async), and the returned nodes are
turned back into a :class:`RankedList`, dropping exactly the metadata keys the adapter documents as added.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode
from llama_index.postprocessor.rerank_plugins import RETRIEVAL_SCORE_KEY, RerankPluginsRerank

from rerank_plugins import Candidate, RankedList, Reranker, ScoredCandidate
from rerank_plugins.integration import RANK_KEY, RESULT_KEYS
from rerank_plugins.types import as_query

ADDED_KEYS = {*RESULT_KEYS, RETRIEVAL_SCORE_KEY}


def to_node(c: Candidate) -> NodeWithScore:
    return NodeWithScore(node=TextNode(id_=c.id, text=c.content, metadata=dict(c.metadata)), score=c.score)


class LlamaIndexHost:
    def __init__(self, reranker: Reranker, *, asynchronous: bool = False) -> None:
        self.reranker = reranker
        self.asynchronous = asynchronous

    def rerank(
        self, query: Any, candidates: Sequence[Any], top_k: int | None = None, score_threshold: float | None = None
    ) -> RankedList:
        nodes = [to_node(c) if isinstance(c, Candidate) else c for c in candidates]
        post = RerankPluginsRerank(
            model=self.reranker, top_n=top_k, score_threshold=score_threshold, metadata_mode=MetadataMode.NONE
        )
        bundle = QueryBundle(query)
        if self.asynchronous:
            out = asyncio.run(post.apostprocess_nodes(nodes, query_bundle=bundle))
        else:
            out = post.postprocess_nodes(nodes, query_bundle=bundle)
        return back(query, nodes, out)


def back(query: Any, nodes: Sequence[NodeWithScore], out: Sequence[NodeWithScore]) -> RankedList:
    position = {n.node.node_id: i for i, n in enumerate(nodes)}
    results = []
    for n in out:
        meta = n.node.metadata
        results.append(
            ScoredCandidate(
                candidate=Candidate(
                    id=n.node.node_id,
                    text=n.node.get_content(),
                    metadata={k: v for k, v in meta.items() if k not in ADDED_KEYS},
                    score=meta[RETRIEVAL_SCORE_KEY],
                ),
                score=n.score,  # type: ignore[arg-type]
                rank=meta[RANK_KEY],
                original_position=position[n.node.node_id],
            )
        )
    return RankedList(query=as_query(query), results=tuple(results))
