"""vLLM's wire shapes: ``POST /score`` and ``/v1/score`` (the score API) and ``GET /v1/models``.

The score body is :class:`~rerank_plugins.serve.schemas.ScoreRequest` (``text_1``: one query or one per pair,
``text_2``: the documents); pairs that share a query are scored as one group. Answer::

    {"id": "score-...", "object": "list", "created": ..., "model": "...",
     "data": [{"index": 0, "object": "score", "score": 0.93}, ...], "usage": {...}}

in the order of the pairs. ``activation: false`` (or ``raw_scores: true``) gives the raw scores. vLLM's
``/rerank`` reads the Cohere shape (:mod:`.cohere_api`).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from ..types import Candidate, Query
from .pipeline import SCORE_PATHS, HTTPProblem, Prepared, RequestPipeline, finite, openapi_body
from .schemas import ScoreRequest

__all__ = ["handle_score", "models_card", "register"]


async def handle_score(pipeline: RequestPipeline, request: Any) -> Any:
    raw = await pipeline.read_body(request)
    body: ScoreRequest = pipeline.parse(ScoreRequest, raw)
    pairs = body.pairs()
    limit = pipeline.limits.max_documents
    if len(pairs) > limit:
        raise HTTPProblem(413, "too_large", f"too many pairs: {len(pairs)} > max_documents={limit}")
    by_query: dict[str, list[int]] = {}
    for i, (q, _) in enumerate(pairs):
        by_query.setdefault(q, []).append(i)
    groups: list[tuple[Query, list[Candidate]]] = []
    prepared: list[Prepared] = []
    for q, idx in by_query.items():
        texts = [pairs[i][1] for i in idx]
        query = pipeline.check(q, texts)
        prepared.append(await pipeline.prepare(q, texts, body))
        groups.append((query, [Candidate(id=str(i), text=t) for i, t in zip(idx, prepared[-1].texts)]))
    ranked_lists = await pipeline.rank(request, groups, prepared[0].engine) if pairs else []
    total_tokens = sum([await p.tokens() for p in prepared])
    raw_wanted = bool(body.raw_scores) or body.activation is False
    convert = pipeline.mapper.raw if raw_wanted else pipeline.mapper.relevance
    scores: dict[int, float] = {}
    for ranked in ranked_lists:
        for r in ranked.results:
            scores[int(r.candidate.id)] = r.score
    data = [{"index": i, "object": "score", "score": finite(convert(scores[i]))} for i in range(len(pairs))]
    return pipeline.json({
        "id": f"score-{uuid.uuid4().hex}", "object": "list", "created": int(time.time()), "model": pipeline.name,
        "data": data, "usage": {"prompt_tokens": total_tokens, "total_tokens": total_tokens, "completion_tokens": 0},
    })


def models_card(pipeline: RequestPipeline, started: float) -> dict[str, Any]:
    """vLLM's / OpenAI's model list with the one served model."""
    card: dict[str, Any] = {"id": pipeline.name, "object": "model", "created": int(started),
                            "owned_by": "rerank-plugins", "root": pipeline.engine.name, "parent": None}
    if pipeline.tokens.max_length is not None:
        card["max_model_len"] = pipeline.tokens.max_length
    return {"object": "list", "data": [card]}


def register(app: Any, pipeline: RequestPipeline, started: float) -> None:
    endpoint = pipeline.endpoint(handle_score)
    for route in SCORE_PATHS:
        app.add_api_route(route, endpoint, methods=["POST"], include_in_schema=route == "/score",
                          summary="Score (text_1, text_2) pairs (vLLM score API)",
                          openapi_extra=openapi_body(ScoreRequest))

    async def models() -> Any:
        return pipeline.json(models_card(pipeline, started))

    app.add_api_route("/v1/models", models, methods=["GET"], summary="The served model (vLLM / OpenAI list)")
