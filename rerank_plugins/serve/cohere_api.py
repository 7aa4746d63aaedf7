"""``POST /rerank``, ``/v1/rerank``, ``/v2/rerank``: the Cohere / Jina wire shape (and TEI's, read from the body).

The body is :class:`~rerank_plugins.serve.schemas.RerankRequest`. A body with ``documents`` gets Cohere's answer
(Jina's and vLLM's ``/rerank`` read the same fields)::

    {"id": "...", "results": [{"index": 0, "relevance_score": 0.93, "document": {"text": "..."}}],
     "model": "...", "meta": {"api_version": ..., "billed_units": ..., "tokens": ...}, "usage": {...}}

In chunk mode (:mod:`.long_documents`) each result also has ``"best_chunk": {"start", "end", "score", "index",
"chunks"}``: the character span of the best-scoring window in the document as sent, its score (on the scale of
``relevance_score``), its position and the number of windows scored (the keys of
:data:`~rerank_plugins.engine.length_policy.BEST_CHUNK_FIELDS`). Cohere's SDK (v1 and v2), LangChain's
``CohereRerank`` and LlamaIndex's ``CohereRerank`` read ``index`` and ``relevance_score`` and ignore it.

A body with TEI's ``texts`` gets TEI's answer (:mod:`.tei_api`).
"""

from __future__ import annotations

import uuid
from typing import Any

from ..engine.length_policy import BEST_CHUNK_KEY
from ..types import Candidate, RankedList
from . import tei_api
from .pipeline import RERANK_PATHS, RequestPipeline, finite, openapi_body
from .schemas import RerankRequest

__all__ = ["answer", "handle_rerank", "register"]


async def handle_rerank(pipeline: RequestPipeline, request: Any) -> Any:
    raw = await pipeline.read_body(request)
    body: RerankRequest = pipeline.parse(RerankRequest, raw)
    texts = body.document_texts()
    query = pipeline.check(body.query, texts)
    prepared = await pipeline.prepare(body.query, texts, body)
    engine_texts = prepared.texts
    candidates = [Candidate(id=str(i), text=t) for i, t in enumerate(engine_texts)]
    if candidates:
        (ranked,) = await pipeline.rank(request, [(query, candidates)], prepared.engine)
    else:
        ranked = RankedList(query=query, results=(), reranker=pipeline.engine.name)
    if body.tei:
        return pipeline.json(tei_api.answer(body, ranked, pipeline.mapper))
    n_tokens = await prepared.tokens()
    version = "2" if request.url.path.startswith("/v2/") else "1"
    shifts = [len(t) - len(e) for t, e in zip(texts, engine_texts)] if body.truncation_direction == "left" else None
    return pipeline.json(answer(body, ranked, pipeline, texts, n_tokens, version, shifts))


def answer(body: RerankRequest, ranked: RankedList, pipeline: RequestPipeline, texts: list[str], n_tokens: int,
           version: str, shifts: list[int] | None = None) -> dict[str, Any]:
    """Cohere's answer (``version``: the API version of the path, ``"1"`` or ``"2"``). ``shifts``: characters cut
    from the start of each document before the engine saw it (``best_chunk`` spans index the sent document)."""
    results = ranked.results[: body.top_n] if body.top_n is not None else ranked.results
    payloads = body.document_payloads() if body.wants_documents() else None
    convert = pipeline.mapper.raw if body.raw_scores else pipeline.mapper.relevance
    items = []
    for r in results:
        entry: dict[str, Any] = {"index": r.original_position, "relevance_score": finite(convert(r.score))}
        if payloads is not None:
            entry["document"] = payloads[r.original_position]
        chunk = r.details.get(BEST_CHUNK_KEY)
        if chunk is not None:
            shift = shifts[r.original_position] if shifts is not None else 0
            entry[BEST_CHUNK_KEY] = {**chunk, "start": chunk["start"] + shift, "end": chunk["end"] + shift,
                                     "score": finite(convert(chunk["score"]))}
        items.append(entry)
    return {
        "id": str(uuid.uuid4()),
        "results": items,
        "model": pipeline.name,
        "meta": {"api_version": {"version": version}, "billed_units": {"search_units": 1},
                 "tokens": {"input_tokens": n_tokens, "output_tokens": 0}},
        "usage": {"total_tokens": n_tokens, "prompt_tokens": n_tokens, "documents": len(texts),
                  "characters": sum(map(len, texts))},
    }


def register(app: Any, pipeline: RequestPipeline) -> None:
    endpoint = pipeline.endpoint(handle_rerank)
    for route in RERANK_PATHS:
        app.add_api_route(route, endpoint, methods=["POST"], include_in_schema=route == "/rerank",
                          summary="Rerank documents for a query", openapi_extra=openapi_body(RerankRequest))
