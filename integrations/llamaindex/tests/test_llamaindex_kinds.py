"""Every core reranker kind through the LlamaIndex adapter: same order, scores, reasoning and traces as bare."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from llama_index.core.schema import NodeWithScore, TextNode
from llama_index.postprocessor.rerank_plugins import RerankPluginsRerank

from rerank_plugins import Candidate
from rerank_plugins.testing.adapter_kinds import AdapterKindsSuite, Returned, run_maybe_async

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


class TestKinds(AdapterKindsSuite):
    adapter_class = RerankPluginsRerank

    def run(self, adapter: Any, query: str, candidates: Sequence[Candidate], asynchronous: bool) -> Returned:
        nodes = [NodeWithScore(node=TextNode(id_=c.id, text=c.content), score=c.score) for c in candidates]
        out = run_maybe_async(asynchronous, lambda: adapter.postprocess_nodes(nodes, query_str=query),
                              lambda: adapter.apostprocess_nodes(nodes, query_str=query))
        return [(n.node.node_id, n.score, n.node.metadata) for n in out]
