"""Batch reranking of large row sets with Ray Data (``pip install 'rerank-plugins[ray]'``).

See :func:`rerank_dataset` and ``rerank-plugins batch --help``; file layout and resume rules in :mod:`.io`.
"""

from __future__ import annotations

from .io import done_query_ids, read_results
from .ray_job import BatchReport, BatchRowsFailed, RerankActor, rerank_dataset

__all__ = ["BatchReport", "BatchRowsFailed", "RerankActor", "done_query_ids", "read_results", "rerank_dataset"]
