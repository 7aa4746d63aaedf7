"""The HTTP rerank service: ``create_app(reranker or name, ...)`` builds a FastAPI app.

Endpoints
    ``POST /rerank`` (also ``/v1/rerank`` and ``/v2/rerank``, the paths Cohere, Jina and vLLM clients call): the
    body of :class:`~rerank_plugins.serve.schemas.RerankRequest`; TEI's body (``texts``) gets TEI's answer.
    ``POST /score`` and ``/v1/score``: vLLM's score API (:class:`~rerank_plugins.serve.schemas.ScoreRequest`).
    ``GET /v1/models`` (vLLM / OpenAI model list); ``GET /health``; ``GET /metrics`` (Prometheus text, see
    :mod:`.metrics`).

Status codes
    * 400 - the body is not valid JSON (the message says where it breaks);
    * 401 - API keys are configured and the request has none, a wrong one, or one in the URL (:mod:`.security`);
    * 404 / 405 - unknown path / method; 415 - a body that is not JSON (``text/plain``, forms);
    * 408 - the body (``body_timeout``) or the headers (:mod:`.server`) did not arrive in time;
    * 413 - over a size limit: body bytes, number of documents, characters of one document or of the query, or
      total characters (the message names the limit and the value); a pair over the model's length with
      ``truncate: false``;
    * 422 - valid JSON of the wrong shape or types (each problem as ``field.path: message``), an empty query, a
      token-truncation option for a reranker that cannot truncate by tokens;
    * 502 - the model backend failed (e.g. an upstream LLM server); 503 - the queue is full or the service is
      stopping; 500 - the model produced unusable output or an unexpected error.

    Every error, whatever its status, has one body: ``{"error": message, "type": kind, "error_type": TEI's kind,
    "detail": message}`` (see :func:`.security.error_body`). No request error stops the process.

Clients that leave
    While a request waits for the engine, the service watches its connection; when the client hangs up, its
    queued work is cancelled (the reranker never sees it) and it counts in ``rerank_client_disconnects_total``
    (not as an error; status 499 in ``rerank_requests_total``). A client that hangs up mid-body counts the same way.

Long documents
    ``long_document_strategy`` (``"truncate"`` / ``"chunk"``) and Cohere v1's ``max_chunks_per_doc`` in a body
    choose the reranker's length policy per request (:mod:`.long_documents`); in chunk mode each result carries
    ``best_chunk`` (:mod:`.cohere_api`) and ``usage`` counts every window's tokens.

Batching
    Requests go through a :class:`~rerank_plugins.serve.batcher.MicroBatcher`: concurrent requests are grouped
    (``max_batch`` requests, ``batch_wait_ms`` of waiting when idle) into one ``rerank_batch`` call that runs in
    a worker thread.

Scores
    See :mod:`.scoring`: ``relevance_score`` (and TEI's ``score``) is the model's activated score - in [0, 1] for
    cross-encoders and cosine embedding rerankers - and ``raw_scores: true`` gives the raw one. A non-finite score
    (``-inf`` from a strategy that could not see a label) is sent as the most negative finite double, since JSON
    has no infinities.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from .._optional import require
from ..base import Reranker
from ..engine.length_policy import LONG_DOCUMENTS
from ..validation import check_choice, check_instance, check_int, check_number, check_strings
from . import cohere_api, vllm_api
from .batcher import MicroBatcher
from .long_documents import LengthPolicies
from .metrics import Metrics
from .middleware import MetricsASGI, json_cors_middleware
from .pipeline import RequestPipeline, ServiceLimits, path_label
from .scoring import ScoreMapper, TokenTools
from .security import APIKeyASGI, keys_from_env, normalise_keys

__all__ = ["ServiceLimits", "create_app"]

#: documents per slice of a large request for pointwise models (``split_documents=None``)
DEFAULT_SPLIT_DOCUMENTS = 64


def create_app(
    reranker: Reranker | str,
    *,
    kind: str | None = None,
    reranker_options: dict[str, Any] | None = None,
    model_name: str | None = None,
    max_documents: int = 1000,
    max_chars_per_document: int = 32_768,
    max_query_chars: int = 8_192,
    max_total_chars: int = 4_000_000,
    max_body_bytes: int | None = None,
    max_batch: int = 32,
    batch_wait_ms: float = 5.0,
    max_batch_documents: int | None = 4096,
    max_queue: int = 1024,
    split_documents: int | None = None,
    body_timeout: float | None = 30.0,
    api_keys: str | Sequence[str] | None = None,
    api_keys_from_env: bool = True,
    metrics_open: bool = False,
    cors_origins: Sequence[str] | None = None,
    score_activation: str | None = None,
    long_document_strategy: str | None = None,
    max_chunks_per_doc: int | None = None,
    close_reranker: bool | None = None,
) -> Any:
    """Build the FastAPI app (needs the ``serve`` extra).

    Args:
        reranker: a built :class:`~rerank_plugins.base.Reranker`, or a name for
            :func:`~rerank_plugins.models.load_reranker` (with ``kind`` and ``reranker_options``), loaded once
            here, before the app serves.
        model_name: the ``model`` reported in answers (default: the reranker's name).
        max_documents, max_chars_per_document, max_query_chars, max_total_chars, max_body_bytes: limits (413).
        max_batch, batch_wait_ms, max_batch_documents, max_queue: micro-batching (see :mod:`.batcher`).
        split_documents: score requests with more documents in slices of this many, sharing the engine with
            other requests and stopping when the client leaves (see :mod:`.batcher`; pointwise rerankers only).
            ``None``: 64 for cross-encoders and embedding rerankers, off for the others; ``0``: off.
        body_timeout: seconds for the whole request body to arrive (408 after that); ``None``: no limit.
        api_keys: one key or several; requests then need ``Authorization: Bearer <key>`` (see :mod:`.security`).
        api_keys_from_env: also accept the keys in ``RERANK_PLUGINS_API_KEYS`` (comma-separated).
        metrics_open: serve ``/metrics`` without a key (``/health`` is always open).
        cors_origins: allow browser calls from these origins (``["*"]`` for any); ``None``: no CORS headers.
        score_activation: ``None`` / ``"model"`` (the model's activation), ``"sigmoid"`` (the scores are logits),
            ``"raw"`` (no activation); see :mod:`.scoring`.
        long_document_strategy, max_chunks_per_doc: the defaults of the request fields of the same names
            (``"truncate"`` / ``"chunk"``; most windows per document), mapped onto the reranker's length policy
            (:mod:`.long_documents`); ``None``: the reranker's own policy.
        close_reranker: close the reranker when the app shuts down (default: only when built here from a name).
    """
    fastapi = require("fastapi", "serve", purpose="the rerank service")
    responses = require("fastapi.responses", "serve")
    limits = ServiceLimits(max_documents=max_documents, max_chars_per_document=max_chars_per_document,
                           max_query_chars=max_query_chars, max_total_chars=max_total_chars,
                           max_body_bytes=max_body_bytes)
    check_number("body_timeout", body_timeout, above=0, optional=True)
    check_int("split_documents", split_documents, 0, optional=True)
    check_choice("long_document_strategy", long_document_strategy, LONG_DOCUMENTS, optional=True)
    check_int("max_chunks_per_doc", max_chunks_per_doc, 1, optional=True)
    keys = normalise_keys(api_keys) + (normalise_keys(keys_from_env()) if api_keys_from_env else [])
    check_instance("reranker", reranker, (str, Reranker), "a Reranker or a name")
    origins = None if cors_origins is None else check_strings("cors_origins", cors_origins)
    owns = isinstance(reranker, str)
    from ..models import build_reranker

    engine = build_reranker(reranker, kind, reranker_options, what="reranker")
    mapper = ScoreMapper(engine, score_activation)
    if split_documents is None:
        split = DEFAULT_SPLIT_DOCUMENTS if mapper.model_kind != "unknown" else None
    else:
        split = split_documents or None
    policies = LengthPolicies(engine, long_document_strategy=long_document_strategy,
                              max_chunks_per_doc=max_chunks_per_doc)
    tokens = TokenTools(engine)
    if tokens.tokenizer is not None:
        # the engine's tokenizer changes its truncation state per call: the service uses its own copy, one
        # thread at a time, so it never races the engine's worker thread
        tokens.tokenizer = copy.deepcopy(tokens.tokenizer)
    close_it = owns if close_reranker is None else bool(close_reranker)
    name = model_name if model_name is not None else (reranker if isinstance(reranker, str) else engine.name)
    metrics = Metrics()
    batcher = MicroBatcher(engine, max_batch=max_batch, batch_wait_ms=batch_wait_ms,
                           max_batch_documents=max_batch_documents, max_queue=max_queue, split_documents=split,
                           on_batch=metrics.batch)
    metrics.queued = lambda: batcher.queued
    metrics.cancelled = lambda: batcher.cancelled
    metrics.cancelled_documents = lambda: batcher.cancelled_documents
    metrics.split_documents = lambda: batcher.split_documents_scored
    pipeline = RequestPipeline(engine, name=name, limits=limits, batcher=batcher, metrics=metrics, tokens=tokens,
                               mapper=mapper, body_timeout=body_timeout, policies=policies)
    started = time.time()

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        batcher.start()
        try:
            yield
        finally:
            await batcher.stop()
            if close_it:
                engine.close()

    app = fastapi.FastAPI(
        title="rerank-plugins",
        description="Rerank documents for a query (Cohere / Jina / TEI / vLLM compatible POST /rerank, vLLM "
                    "POST /score).",
        lifespan=lifespan,
    )
    app.state.reranker = engine
    app.state.batcher = batcher
    app.state.metrics = metrics
    app.state.limits = limits
    app.state.scores = mapper
    app.state.pipeline = pipeline
    # called by run_server when the graceful shutdown begins (seconds: its timeout; see .server)
    app.state.begin_shutdown = batcher.drain
    cohere_api.register(app, pipeline)
    vllm_api.register(app, pipeline, started)
    _register_operations(app, pipeline, started, responses)
    _add_middleware(app, pipeline, keys=keys, metrics_open=metrics_open, cors_origins=origins)
    return app


def _register_operations(app: Any, pipeline: RequestPipeline, started: float, responses: Any) -> None:
    """``/health``, ``/metrics`` and the error answers of FastAPI's own failures (404, 405, 500)."""
    starlette_exc = require("starlette.exceptions", "serve")
    batcher = pipeline.batcher

    async def health() -> Any:
        ok = batcher.running or batcher.batches == 0
        payload = {"status": "ok" if ok else "unavailable", "model": pipeline.name, "queued": batcher.queued,
                   "batches": batcher.batches, "uptime_seconds": round(time.time() - started, 3),
                   "scores": pipeline.mapper.describe()}
        return pipeline.json(payload, 200 if ok else 503)

    async def metrics_endpoint() -> Any:
        return responses.PlainTextResponse(pipeline.metrics.render(), media_type="text/plain; version=0.0.4")

    app.add_api_route("/health", health, methods=["GET"])
    app.add_api_route("/health", health, methods=["HEAD"], include_in_schema=False)  # load balancers' probes
    app.add_api_route("/metrics", metrics_endpoint, methods=["GET"])

    async def http_error(request: Any, exc: Any) -> Any:
        kinds = {404: "not_found", 405: "method_not_allowed"}
        message = {404: f"no such endpoint: {request.url.path}",
                   405: f"{request.method} is not allowed on {request.url.path}"}.get(exc.status_code, str(exc.detail))
        return pipeline.error_response(exc.status_code, kinds.get(exc.status_code, "http_error"), message,
                                       request.url.path, headers=dict(exc.headers or {}))

    async def unexpected(request: Any, exc: Exception) -> Any:
        return pipeline.error_response(500, "internal", f"internal error: {type(exc).__name__}", request.url.path)

    app.add_exception_handler(starlette_exc.HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


def _add_middleware(app: Any, pipeline: RequestPipeline, *, keys: list[bytes], metrics_open: bool,
                    cors_origins: Sequence[str] | None) -> None:
    """Outermost first: metrics (every answer counted, 401s and CORS refusals included), CORS (so that 401s
    carry its headers), API keys, the app."""
    metrics = pipeline.metrics
    if keys:
        app.add_middleware(APIKeyASGI, keys=keys, metrics_open=metrics_open,
                           on_reject=lambda path: metrics.error(path_label(path), "unauthorized"))
    if cors_origins is not None:
        app.add_middleware(json_cors_middleware(), allow_origins=list(cors_origins),
                           allow_methods=["GET", "POST", "OPTIONS"], allow_headers=["Authorization", "Content-Type"],
                           max_age=600,
                           on_refuse=lambda path: metrics.error(path_label(path), "cors_refused"))
    app.add_middleware(MetricsASGI, metrics=metrics)  # added last: the outermost layer
