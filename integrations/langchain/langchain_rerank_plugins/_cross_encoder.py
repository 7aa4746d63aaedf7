"""A LangChain ``BaseCrossEncoder`` (``HuggingFaceCrossEncoder``, ``SagemakerEndpointCrossEncoder``, your own) used
as a rerank-plugins reranker, so :class:`~langchain_rerank_plugins.RerankPluginsCompressor` takes one as its model.

The scores are the cross-encoder's own ``score([(query, text), ...])``: exactly what LangChain's
``CrossEncoderReranker`` sorts by (langchain-classic 1.0.8,
``langchain_classic/retrievers/document_compressors/cross_encoder_rerank.py``), so the order is the same (ties keep
input order in both); the compressor adds what that one lacks (``relevance_score``, ``top_n=None``, thresholds).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.cross_encoders import BaseCrossEncoder

from rerank_plugins import Candidate, InvalidInputError, ModelOutputError, Query, Reranker


class CrossEncoderModelReranker(Reranker):
    """Rerank with a LangChain ``BaseCrossEncoder``: one ``score`` call per query, on ``(query, text)`` pairs."""

    def __init__(self, model: BaseCrossEncoder) -> None:
        if not isinstance(model, BaseCrossEncoder):
            raise TypeError(f"model must be a langchain_core BaseCrossEncoder, got {type(model).__name__}")
        self.model = model
        label = getattr(model, "model_name", None)
        self.name = f"langchain-cross-encoder:{label if isinstance(label, str) else type(model).__name__}"

    def _score(self, query: Query, candidates: Sequence[Candidate]) -> list[float]:
        if query.text is None:
            raise InvalidInputError(f"{self.name} scores text pairs; the query has no text")
        for i, c in enumerate(candidates):
            if c.text is None:
                raise InvalidInputError(f"{self.name} scores text pairs; candidate {i} ({c.id!r}) has no text")
        scores: Any = self.model.score([(query.text, c.text or "") for c in candidates])
        values = [float(s) for s in scores]  # a list, a numpy array, or (two-logit models) a map of numpy floats
        if len(values) != len(candidates):
            raise ModelOutputError(f"{self.name} returned {len(values)} scores for {len(candidates)} pairs")
        return values
