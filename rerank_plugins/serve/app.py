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

import asyncio
import contextlib
import copy
import math
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from pydantic import ValidationError

from .._optional import require
from ..base import Reranker
from ..errors import BackendError, ConfigError, InvalidInputError, ModelOutputError, RerankError
from ..types import Candidate, Query, RankedList, as_query
from .batcher import MicroBatcher, Overloaded
from .metrics import Metrics
from .schemas import RerankRequest, ScoreRequest
from .scoring import ScoreMapper, TokenTools, count_words
from .security import APIKeyASGI, error_body, keys_from_env, normalise_keys

__all__ = ["ServiceLimits", "create_app"]

RERANK_PATHS = ("/rerank", "/v1/rerank", "/v2/rerank")
SCORE_PATHS = ("/score", "/v1/score")
_KNOWN_PATHS = {*RERANK_PATHS, *SCORE_PATHS, "/health", "/metrics", "/v1/models"}
_MOST_NEGATIVE = -sys.float_info.max
#: documents per slice of a large request for pointwise models (``split_documents=None``)
DEFAULT_SPLIT_DOCUMENTS = 64


def _path_label(path: str) -> str:
    return path if path in _KNOWN_PATHS else "other"


class _HTTPError(Exception):
    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message


class ServiceLimits:
    """Size limits of one service (see :func:`create_app`)."""

    def __init__(
        self,
        *,
        max_documents: int = 1000,
        max_chars_per_document: int = 32_768,
        max_query_chars: int = 8_192,
        max_total_chars: int = 4_000_000,
        max_body_bytes: int | None = None,
    ) -> None:
        for name, value in (("max_documents", max_documents), ("max_chars_per_document", max_chars_per_document),
                            ("max_query_chars", max_query_chars), ("max_total_chars", max_total_chars)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an int >= 1, got {value!r}")
        self.max_documents = max_documents
        self.max_chars_per_document = max_chars_per_document
        self.max_query_chars = max_query_chars
        self.max_total_chars = max_total_chars
        # JSON can take up to 6 bytes per character (\\uXXXX escapes) plus per-document overhead
        derived = 6 * max_total_chars + 64 * max_documents + 65_536
        if max_body_bytes is not None and (isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int)
                                           or max_body_bytes < 1):
            raise ConfigError(f"max_body_bytes must be an int >= 1 or None, got {max_body_bytes!r}")
        self.max_body_bytes = max_body_bytes if max_body_bytes is not None else derived

    def check(self, query: str, texts: list[str]) -> None:
        if len(texts) > self.max_documents:
            raise _HTTPError(413, "too_large", f"too many documents: {len(texts)} > max_documents={self.max_documents}")
        if len(query) > self.max_query_chars:
            raise _HTTPError(413, "too_large",
                             f"the query has {len(query)} characters; the limit is {self.max_query_chars}")
        total = len(query)
        for i, text in enumerate(texts):
            if len(text) > self.max_chars_per_document:
                raise _HTTPError(413, "too_large", f"document {i} has {len(text)} characters; "
                                 f"the limit is max_chars_per_document={self.max_chars_per_document}")
            total += len(text)
        if total > self.max_total_chars:
            raise _HTTPError(413, "too_large",
                             f"the request has {total} characters in all; the limit is {self.max_total_chars}")


def _validation_message(exc: ValidationError) -> tuple[int, str, str]:
    errors = exc.errors(include_url=False)
    if any(e.get("type") == "json_invalid" for e in errors):
        detail = "; ".join(str(e.get("ctx", {}).get("error", e.get("msg"))) for e in errors)
        return 400, "malformed_json", f"the request body is not valid JSON: {detail}"
    parts: list[str] = []
    union_seen: set[str] = set()
    for e in errors:
        raw_loc = tuple(e.get("loc", ()))
        if raw_loc[:1] == ("documents",) and any(x in ("str", "DocumentObject") for x in raw_loc):
            # one message per document for the "string or {'text': ...}" union, not one per branch
            where = ".".join(str(x) for x in raw_loc[:2])
            if where not in union_seen:
                union_seen.add(where)
                parts.append(f"{where}: must be a string or an object with a string 'text' field")
            continue
        loc = ".".join(str(x) for x in raw_loc)
        msg = str(e.get("msg", "invalid"))
        parts.append(f"{loc}: {msg}" if loc else msg)
    more = f" (and {len(parts) - 20} more)" if len(parts) > 20 else ""
    parts = parts[:20]
    return 422, "validation", "invalid request: " + "; ".join(parts) + more


class _ClientGone(Exception):
    def __init__(self, stage: str) -> None:
        super().__init__(stage)
        self.stage = stage


def _check_content_type(value: str | None) -> None:
    if value is None:
        return
    main = value.split(";", 1)[0].strip().lower()
    if main in ("", "application/json") or (main.startswith("application/") and main.endswith("+json")):
        return
    raise _HTTPError(415, "unsupported_media_type",
                     f"the body must be JSON sent as 'Content-Type: application/json', got {value!r}")


async def _disconnected(receive: Callable[[], Awaitable[MutableMapping[str, Any]]]) -> None:
    while True:
        message = await receive()
        if message.get("type") == "http.disconnect":
            return


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
        close_reranker: close the reranker when the app shuts down (default: only when built here from a name).
    """
    fastapi = require("fastapi", "serve", purpose="the rerank service")
    responses = require("fastapi.responses", "serve")
    starlette_exc = require("starlette.exceptions", "serve")
    starlette_requests = require("starlette.requests", "serve")
    limits = ServiceLimits(max_documents=max_documents, max_chars_per_document=max_chars_per_document,
                           max_query_chars=max_query_chars, max_total_chars=max_total_chars,
                           max_body_bytes=max_body_bytes)
    if body_timeout is not None and (isinstance(body_timeout, bool) or not isinstance(body_timeout, (int, float))
                                     or not body_timeout > 0):
        raise ConfigError(f"body_timeout must be a number > 0 or None, got {body_timeout!r}")
    keys = normalise_keys(api_keys) + (normalise_keys(keys_from_env()) if api_keys_from_env else [])
    if not isinstance(reranker, (str, Reranker)):
        raise ConfigError(f"reranker must be a Reranker or a name, got {type(reranker).__name__}")
    owns = isinstance(reranker, str)
    from ..models import build_reranker

    engine = build_reranker(reranker, kind, reranker_options, what="reranker")
    mapper = ScoreMapper(engine, score_activation)
    if split_documents is None:
        split = DEFAULT_SPLIT_DOCUMENTS if mapper.model_kind != "unknown" else None
    elif isinstance(split_documents, bool) or not isinstance(split_documents, int) or split_documents < 0:
        raise ConfigError(f"split_documents must be an int >= 0 or None, got {split_documents!r}")
    else:
        split = split_documents or None
    tokens = TokenTools(engine)
    if tokens.tokenizer is not None:
        # the engine's tokenizer changes its truncation state per call: the service uses its own copy, one
        # thread at a time, so it never races the engine's worker thread
        tokens.tokenizer = copy.deepcopy(tokens.tokenizer)
    token_lock = threading.Lock()
    close_it = owns if close_reranker is None else bool(close_reranker)
    name = model_name if model_name is not None else (reranker if isinstance(reranker, str) else engine.name)
    metrics = Metrics()
    batcher = MicroBatcher(engine, max_batch=max_batch, batch_wait_ms=batch_wait_ms,
                           max_batch_documents=max_batch_documents, max_queue=max_queue, split_documents=split,
                           on_batch=metrics.batch)
    metrics.queued = lambda: batcher.queued
    metrics.cancelled = lambda: batcher.cancelled
    metrics.cancelled_documents = lambda: batcher.cancelled_documents
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
    json_response = responses.JSONResponse

    def error_response(status: int, kind: str, message: str, path: str,
                       headers: dict[str, str] | None = None) -> Any:
        metrics.error(_path_label(path), kind)
        extra = dict(headers or {})
        if status == 503:
            extra.setdefault("Retry-After", "1")
        if status == 408:
            extra.setdefault("Connection", "close")
        return json_response(error_body(message, kind), status_code=status, headers=extra or None)

    async def read_body(request: Any) -> bytes:
        _check_content_type(request.headers.get("content-type"))
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes:
            raise _HTTPError(413, "too_large",
                             f"the request body has {declared} bytes; the limit is {limits.max_body_bytes}")

        async def collect() -> bytes:
            chunks, size = [], 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > limits.max_body_bytes:
                    raise _HTTPError(413, "too_large", f"the request body exceeds {limits.max_body_bytes} bytes")
                chunks.append(chunk)
            return b"".join(chunks)

        try:
            if body_timeout is None:
                return await collect()
            return await asyncio.wait_for(collect(), body_timeout)
        except asyncio.TimeoutError:
            raise _HTTPError(408, "body_timeout",
                             f"the request body did not arrive within body_timeout={body_timeout:g}s") from None
        except starlette_requests.ClientDisconnect:
            raise _ClientGone("body") from None

    def prepare(query: str, texts: list[str], body: RerankRequest | ScoreRequest) -> tuple[list[str], int]:
        """Apply the request's token truncation; returns the texts for the engine and their token count."""
        max_tokens_per_doc = getattr(body, "max_tokens_per_doc", None)
        truncate = getattr(body, "truncate", None)
        direction = getattr(body, "truncation_direction", None)
        prompt_tokens = body.truncate_prompt_tokens
        asked = [n for n, v in (("max_tokens_per_doc", max_tokens_per_doc), ("truncate", truncate),
                                ("truncation_direction", direction), ("truncate_prompt_tokens", prompt_tokens))
                 if v is not None]
        if not tokens.available:
            if asked:
                raise _HTTPError(422, "unsupported", tokens.unavailable_message(" / ".join(asked)))
            return texts, count_words(query, texts)
        side = direction or "right"
        max_length = tokens.max_length
        with token_lock:
            if max_tokens_per_doc is not None:
                texts, _ = tokens.cut(texts, max_tokens_per_doc, side)
            budget: int | None = None
            if prompt_tokens is not None:
                budget = max_length if prompt_tokens == -1 else prompt_tokens
                if max_length is not None and budget is not None:
                    budget = min(budget, max_length)
            elif truncate or (truncate is None and direction == "left"):
                budget = max_length
            if budget is not None and texts:
                room = budget - tokens.pair_special() - tokens.query_tokens(query)
                if room < 1:
                    raise _HTTPError(413, "too_large", f"the query leaves no room for a document within {budget} "
                                     "tokens (query tokens plus the pair's special tokens); shorten the query")
                texts, _ = tokens.cut(texts, room, side)
            lengths = tokens.pair_lengths(query, texts, cap=truncate is not False)
            if truncate is False and max_length is not None:
                for i, n in enumerate(lengths):
                    if n > max_length:
                        raise _HTTPError(413, "too_large", f"document {i}: the (query, document) pair has {n} "
                                         f"tokens and the model reads at most {max_length}; send truncate: true")
            return texts, sum(lengths)

    async def score_jobs(request: Any, groups: list[tuple[Query, list[Candidate]]]) -> list[RankedList]:
        futures = [batcher.enqueue(q, c) for q, c in groups]
        combined: asyncio.Future[list[RankedList]] = asyncio.gather(*futures)
        watcher: asyncio.Future[None] = asyncio.ensure_future(_disconnected(request.receive))
        try:
            waiting: set[asyncio.Future[Any]] = {combined, watcher}
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            combined.cancel()
            raise
        finally:
            watcher.cancel()
        if combined.done():
            return list(combined.result())
        stage = "running" if any(batcher.started(f) for f in futures) else "queued"
        combined.cancel()  # cancels every queued job: the batcher drops them unscored
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await combined
        raise _ClientGone(stage)

    async def guarded(request: Any, handler: Callable[[Any], Awaitable[Any]]) -> Any:
        path = request.url.path
        try:
            return await handler(request)
        except _ClientGone as exc:
            metrics.disconnect(_path_label(path), exc.stage)
            # nobody reads this answer; it records status 499 ("client closed request")
            return json_response(error_body(f"the client disconnected ({exc.stage})", "client_disconnect"),
                                 status_code=499)
        except _HTTPError as exc:
            return error_response(exc.status, exc.kind, exc.message, path)
        except Overloaded as exc:
            kind_ = "shutting_down" if "shutting down" in str(exc) else "overloaded"
            return error_response(503, kind_, str(exc), path)
        except InvalidInputError as exc:
            return error_response(422, "validation", str(exc), path)
        except BackendError as exc:
            return error_response(502, "backend", f"the model backend failed: {exc}", path)
        except ModelOutputError as exc:
            return error_response(500, "model_output", f"the model produced unusable output: {exc}", path)
        except RerankError as exc:
            return error_response(500, "rerank", f"reranking failed: {exc}", path)
        except Exception as exc:  # keep serving whatever happens in one request
            return error_response(500, "internal", f"internal error: {type(exc).__name__}: {exc}", path)

    def parse(model: Any, raw: bytes) -> Any:
        try:
            return model.model_validate_json(raw)
        except ValidationError as exc:
            status, kind_, message = _validation_message(exc)
            raise _HTTPError(status, kind_, message) from None

    def check_query(text: str) -> Query:
        try:
            return as_query(text)
        except InvalidInputError as exc:
            raise _HTTPError(422, "validation", f"query: {exc}") from None

    async def handle_rerank(request: Any) -> Any:
        raw = await read_body(request)
        body: RerankRequest = parse(RerankRequest, raw)
        texts = body.document_texts()
        limits.check(body.query, texts)
        query = check_query(body.query)
        engine_texts, n_tokens = await asyncio.to_thread(prepare, body.query, texts, body)
        candidates = [Candidate(id=str(i), text=t) for i, t in enumerate(engine_texts)]
        if candidates:
            (ranked,) = await score_jobs(request, [(query, candidates)])
        else:
            ranked = RankedList(query=query, results=(), reranker=engine.name)
        version = "2" if request.url.path.startswith("/v2/") else "1"
        return json_response(_answer(body, ranked, name, texts, n_tokens, mapper, version))

    async def handle_score(request: Any) -> Any:
        raw = await read_body(request)
        body: ScoreRequest = parse(ScoreRequest, raw)
        pairs = body.pairs()
        if len(pairs) > limits.max_documents:
            raise _HTTPError(413, "too_large", f"too many pairs: {len(pairs)} > max_documents={limits.max_documents}")
        by_query: dict[str, list[int]] = {}
        for i, (q, _) in enumerate(pairs):
            by_query.setdefault(q, []).append(i)
        total_tokens = 0
        groups: list[tuple[Query, list[Candidate]]] = []
        for q, idx in by_query.items():
            texts = [pairs[i][1] for i in idx]
            limits.check(q, texts)
            engine_texts, n = await asyncio.to_thread(prepare, q, texts, body)
            total_tokens += n
            groups.append((check_query(q), [Candidate(id=str(i), text=t) for i, t in zip(idx, engine_texts)]))
        ranked_lists = await score_jobs(request, groups) if pairs else []
        raw_wanted = bool(body.raw_scores) or body.activation is False
        scores: dict[int, float] = {}
        for ranked in ranked_lists:
            for r in ranked.results:
                scores[int(r.candidate.id)] = r.score
        data = [{"index": i, "object": "score",
                 "score": _finite(mapper.raw(scores[i]) if raw_wanted else mapper.relevance(scores[i]))}
                for i in range(len(pairs))]
        return json_response({
            "id": f"score-{uuid.uuid4().hex}", "object": "list", "created": int(time.time()), "model": name,
            "data": data, "usage": {"prompt_tokens": total_tokens, "total_tokens": total_tokens,
                                    "completion_tokens": 0},
        })

    async def rerank_endpoint(request: Any) -> Any:
        return await guarded(request, handle_rerank)

    async def score_endpoint(request: Any) -> Any:
        return await guarded(request, handle_score)

    # annotations are strings here (PEP 563); FastAPI needs the real class to inject the request
    rerank_endpoint.__annotations__["request"] = fastapi.Request
    score_endpoint.__annotations__["request"] = fastapi.Request
    for route in RERANK_PATHS:
        app.add_api_route(route, rerank_endpoint, methods=["POST"], include_in_schema=route == "/rerank",
                          summary="Rerank documents for a query",
                          openapi_extra=_openapi_body(RerankRequest))
    for route in SCORE_PATHS:
        app.add_api_route(route, score_endpoint, methods=["POST"], include_in_schema=route == "/score",
                          summary="Score (text_1, text_2) pairs (vLLM score API)",
                          openapi_extra=_openapi_body(ScoreRequest))

    @app.get("/health")
    async def health() -> Any:
        ok = batcher.running or batcher.batches == 0
        payload = {"status": "ok" if ok else "unavailable", "model": name, "queued": batcher.queued,
                   "batches": batcher.batches, "uptime_seconds": round(time.time() - started, 3),
                   "scores": mapper.describe()}
        return json_response(payload, status_code=200 if ok else 503)

    @app.get("/metrics")
    async def metrics_endpoint() -> Any:
        return responses.PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models")
    async def models_endpoint() -> Any:
        card: dict[str, Any] = {"id": name, "object": "model", "created": int(started), "owned_by": "rerank-plugins",
                                "root": engine.name, "parent": None}
        if tokens.max_length is not None:
            card["max_model_len"] = tokens.max_length
        return json_response({"object": "list", "data": [card]})

    @app.exception_handler(starlette_exc.HTTPException)
    async def http_error(request: Any, exc: Any) -> Any:
        kinds = {404: "not_found", 405: "method_not_allowed"}
        message = {404: f"no such endpoint: {request.url.path}",
                   405: f"{request.method} is not allowed on {request.url.path}"}.get(exc.status_code, str(exc.detail))
        return error_response(exc.status_code, kinds.get(exc.status_code, "http_error"), message, request.url.path,
                              headers=dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def unexpected(request: Any, exc: Exception) -> Any:
        return error_response(500, "internal", f"internal error: {type(exc).__name__}", request.url.path)

    app.add_middleware(_MetricsASGI, metrics=metrics)
    if keys:
        app.add_middleware(APIKeyASGI, keys=keys, metrics_open=metrics_open,
                           on_reject=lambda path: metrics.error(_path_label(path), "unauthorized"))
    if cors_origins is not None:
        cors = require("starlette.middleware.cors", "serve")
        origins = [cors_origins] if isinstance(cors_origins, str) else list(cors_origins)
        app.add_middleware(cors.CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST", "OPTIONS"],
                           allow_headers=["Authorization", "Content-Type"], max_age=600)
    return app


def _openapi_body(model: Any) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


def _finite(value: float) -> float:
    return value if math.isfinite(value) else (_MOST_NEGATIVE if value < 0 else sys.float_info.max)


def _answer(body: RerankRequest, ranked: RankedList, model: str, texts: list[str], n_tokens: int,
            mapper: ScoreMapper, version: str) -> Any:
    results = ranked.results[: body.top_n] if body.top_n is not None else ranked.results
    with_docs = body.wants_documents()
    payloads = body.document_payloads() if with_docs else []
    convert = mapper.raw if body.raw_scores else mapper.relevance
    if body.tei:
        out: list[dict[str, Any]] = []
        for r in results:
            item: dict[str, Any] = {"index": r.original_position, "score": _finite(convert(r.score))}
            if with_docs:
                item["text"] = payloads[r.original_position]["text"]
            out.append(item)
        return out
    items = []
    for r in results:
        entry: dict[str, Any] = {"index": r.original_position, "relevance_score": _finite(convert(r.score))}
        if with_docs:
            entry["document"] = payloads[r.original_position]
        items.append(entry)
    return {
        "id": str(uuid.uuid4()),
        "results": items,
        "model": model,
        "meta": {"api_version": {"version": version}, "billed_units": {"search_units": 1},
                 "tokens": {"input_tokens": n_tokens, "output_tokens": 0}},
        "usage": {"total_tokens": n_tokens, "prompt_tokens": n_tokens, "documents": len(texts),
                  "characters": sum(map(len, texts))},
    }


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class _MetricsASGI:
    """Pure ASGI middleware counting every HTTP request (status, latency) without buffering bodies."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        label = path if path in _KNOWN_PATHS else "other"
        status = 500
        start = time.perf_counter()
        self.metrics.request_started()

        async def send_wrapper(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except asyncio.CancelledError:
            status = 499  # cancelled by the server's graceful-shutdown timeout or the client going away
            raise
        finally:
            self.metrics.request_finished(label, scope.get("method", ""), status, time.perf_counter() - start)
