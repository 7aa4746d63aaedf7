"""LlamaIndex node postprocessor backed by any rerank-plugins reranker."""

from llama_index.postprocessor.rerank_plugins.base import RETRIEVAL_SCORE_KEY, RerankPluginsRerank

__all__ = ["RETRIEVAL_SCORE_KEY", "RerankPluginsRerank"]
