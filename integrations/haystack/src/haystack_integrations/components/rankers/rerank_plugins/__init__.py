"""Haystack ranker component backed by any rerank-plugins reranker."""

from .ranker import RerankPluginsRanker

__all__ = ["RerankPluginsRanker"]
