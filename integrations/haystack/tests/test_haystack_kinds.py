"""Every core reranker kind through the Haystack adapter: same order, scores, reasoning and traces as bare."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from haystack import Document
from haystack_integrations.components.rankers.rerank_plugins import RerankPluginsRanker

from rerank_plugins import Candidate
from rerank_plugins.testing.adapter_kinds import AdapterKindsSuite, Returned, run_maybe_async

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


class TestKinds(AdapterKindsSuite):
    adapter_class = RerankPluginsRanker
    top_n_field = "top_k"

    def run(self, adapter: Any, query: str, candidates: Sequence[Candidate], asynchronous: bool) -> Returned:
        docs = [Document(id=c.id, content=c.content, meta=dict(c.metadata)) for c in candidates]
        out = run_maybe_async(asynchronous, lambda: adapter.run(query=query, documents=docs),
                              lambda: adapter.run_async(query=query, documents=docs))["documents"]
        return [(d.id, d.score, d.meta) for d in out]
