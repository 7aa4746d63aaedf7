"""LangChain document compressor backed by any rerank-plugins reranker."""

from langchain_rerank_plugins.compressor import RELEVANCE_SCORE_KEY, RerankPluginsCompressor

__all__ = ["RELEVANCE_SCORE_KEY", "RerankPluginsCompressor"]
