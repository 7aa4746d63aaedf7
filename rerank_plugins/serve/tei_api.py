"""TEI's wire shape (text-embeddings-inference ``POST /rerank``): a body with ``texts`` gets a bare list.

Request fields TEI sends: ``query``, ``texts``, ``return_text``, ``raw_scores``, ``truncate``,
``truncation_direction`` (:class:`~rerank_plugins.serve.schemas.RerankRequest`). Answer::

    [{"index": 2, "score": 0.93, "text": "..."}, ...]

best first (``text`` only with ``return_text``). The route is :mod:`.cohere_api`'s: TEI posts to ``/rerank``.
"""

from __future__ import annotations

from typing import Any

from ..types import RankedList
from .pipeline import finite
from .schemas import RerankRequest
from .scoring import ScoreMapper

__all__ = ["answer"]


def answer(body: RerankRequest, ranked: RankedList, mapper: ScoreMapper) -> list[dict[str, Any]]:
    results = ranked.results[: body.top_n] if body.top_n is not None else ranked.results
    texts = body.document_texts() if body.wants_documents() else None
    convert = mapper.raw if body.raw_scores else mapper.relevance
    out: list[dict[str, Any]] = []
    for r in results:
        item: dict[str, Any] = {"index": r.original_position, "score": finite(convert(r.score))}
        if texts is not None:
            item["text"] = texts[r.original_position]
        out.append(item)
    return out
