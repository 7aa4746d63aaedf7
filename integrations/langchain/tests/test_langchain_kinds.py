"""Every core reranker kind through the LangChain adapter: same order, scores, reasoning and traces as bare."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from langchain_core.documents import Document
from langchain_rerank_plugins import RerankPluginsCompressor

from rerank_plugins import Candidate
from rerank_plugins.testing.adapter_kinds import AdapterKindsSuite, Returned, run_maybe_async

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


class TestKinds(AdapterKindsSuite):
    adapter_class = RerankPluginsCompressor

    def run(self, adapter: Any, query: str, candidates: Sequence[Candidate], asynchronous: bool) -> Returned:
        docs = [Document(id=c.id, page_content=c.content, metadata=dict(c.metadata)) for c in candidates]
        out = run_maybe_async(asynchronous, lambda: adapter.compress_documents(docs, query),
                              lambda: adapter.acompress_documents(docs, query))
        return [(d.id, d.metadata["relevance_score"], d.metadata) for d in out]
