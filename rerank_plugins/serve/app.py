"""The HTTP rerank service: ``create_app(reranker or name, ...)`` builds a FastAPI app.

Endpoints
    ``POST /rerank`` (also ``/v1/rerank`` and ``/v2/rerank``, the paths Cohere and Jina clients call): the
    body of :class:`~rerank_plugins.serve.schemas.RerankRequest`; ``GET /health``; ``GET /metrics``
    (Prometheus text, see :mod:`.metrics`).

Status codes
    * 400 - the body is not valid JSON (the message says where it breaks);
    * 413 - over a size limit: body bytes, number of documents, characters of one document or of the query, or
      total characters (the message names the limit and the value);
    * 422 - valid JSON of the wrong shape or types (each problem as ``field.path: message``), an empty query;
    * 502 - the model backend failed (e.g. an upstream LLM server); 503 - the queue is full or the service is
      stopping; 500 - the model produced unusable output or an unexpected error. Errors are JSON
      ``{"error": message, "type": kind}``; no request error stops the process.

Batching
    Requests go through a :class:`~rerank_plugins.serve.batcher.MicroBatcher`: concurrent requests are grouped
    (``max_batch`` requests, ``batch_wait_ms`` of waiting when idle) into one ``rerank_batch`` call that runs in
    a worker thread.

Scores
    ``relevance_score`` is the reranker's score as a float; a non-finite score (``-inf`` from a strategy that
    could not see a label) is sent as the most negative finite double, since JSON has no infinities.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

from pydantic import ValidationError

from .._optional import require
from ..base import Reranker
from ..errors import BackendError, ConfigError, InvalidInputError, ModelOutputError, RerankError
from ..types import Candidate, RankedList, as_query
from .batcher import MicroBatcher, Overloaded
from .metrics import Metrics
from .schemas import RerankRequest

__all__ = ["ServiceLimits", "create_app"]

RERANK_PATHS = ("/rerank", "/v1/rerank", "/v2/rerank")
_KNOWN_PATHS = {*RERANK_PATHS, "/health", "/metrics"}
_MOST_NEGATIVE = -sys.float_info.max


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


def _score(value: float) -> float:
    return value if math.isfinite(value) else (_MOST_NEGATIVE if value < 0 else sys.float_info.max)


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
        close_reranker: close the reranker when the app shuts down (default: only when built here from a name).
    """
    fastapi = require("fastapi", "serve", purpose="the rerank service")
    responses = require("fastapi.responses", "serve")
    limits = ServiceLimits(max_documents=max_documents, max_chars_per_document=max_chars_per_document,
                           max_query_chars=max_query_chars, max_total_chars=max_total_chars,
                           max_body_bytes=max_body_bytes)
    owns = isinstance(reranker, str)
    if isinstance(reranker, str):
        from ..models import load_reranker

        engine: Reranker = load_reranker(reranker, kind=kind, **dict(reranker_options or {}))
    elif isinstance(reranker, Reranker):
        if kind is not None or reranker_options:
            raise ConfigError("kind and reranker_options apply only when the reranker is given by name")
        engine = reranker
    else:
        raise ConfigError(f"reranker must be a Reranker or a name, got {type(reranker).__name__}")
    close_it = owns if close_reranker is None else bool(close_reranker)
    name = model_name if model_name is not None else (reranker if isinstance(reranker, str) else engine.name)
    metrics = Metrics()
    batcher = MicroBatcher(engine, max_batch=max_batch, batch_wait_ms=batch_wait_ms,
                           max_batch_documents=max_batch_documents, max_queue=max_queue, on_batch=metrics.batch)
    metrics.queued = lambda: batcher.queued
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
        description="Rerank documents for a query (Cohere / Jina / TEI compatible POST /rerank).",
        lifespan=lifespan,
    )
    app.state.reranker = engine
    app.state.batcher = batcher
    app.state.metrics = metrics
    app.state.limits = limits
    json_response = responses.JSONResponse

    def error_response(status: int, kind: str, message: str, path: str) -> Any:
        metrics.error(path, kind)
        headers = {"Retry-After": "1"} if status == 503 else None
        return json_response({"error": message, "type": kind}, status_code=status, headers=headers)

    async def read_body(request: Any) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes:
            raise _HTTPError(413, "too_large",
                             f"the request body has {declared} bytes; the limit is {limits.max_body_bytes}")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limits.max_body_bytes:
                raise _HTTPError(413, "too_large", f"the request body exceeds {limits.max_body_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def rerank_endpoint(request: Any) -> Any:
        path = request.url.path
        try:
            raw = await read_body(request)
            try:
                body = RerankRequest.model_validate_json(raw)
            except ValidationError as exc:
                status, kind, message = _validation_message(exc)
                raise _HTTPError(status, kind, message) from None
            texts = body.document_texts()
            limits.check(body.query, texts)
            try:
                query = as_query(body.query)
            except InvalidInputError as exc:
                raise _HTTPError(422, "validation", f"query: {exc}") from None
            candidates = [Candidate(id=str(i), text=t) for i, t in enumerate(texts)]
            if candidates:
                ranked = await batcher.submit(query, candidates)
            else:
                ranked = RankedList(query=query, results=(), reranker=engine.name)
            return json_response(_answer(body, ranked, name, len(texts), sum(map(len, texts))))
        except _HTTPError as exc:
            return error_response(exc.status, exc.kind, exc.message, path)
        except Overloaded as exc:
            return error_response(503, "overloaded", str(exc), path)
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

    # annotations are strings here (PEP 563); FastAPI needs the real class to inject the request
    rerank_endpoint.__annotations__["request"] = fastapi.Request
    openapi = {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": RerankRequest.model_json_schema()}},
        }
    }
    for route in RERANK_PATHS:
        app.add_api_route(route, rerank_endpoint, methods=["POST"], openapi_extra=openapi,
                          include_in_schema=route == "/rerank", summary="Rerank documents for a query")

    @app.get("/health")
    async def health() -> Any:
        ok = batcher.running or batcher.batches == 0
        payload = {"status": "ok" if ok else "unavailable", "model": name, "queued": batcher.queued,
                   "batches": batcher.batches, "uptime_seconds": round(time.time() - started, 3)}
        return json_response(payload, status_code=200 if ok else 503)

    @app.get("/metrics")
    async def metrics_endpoint() -> Any:
        return responses.PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.exception_handler(Exception)
    async def unexpected(request: Any, exc: Exception) -> Any:
        return error_response(500, "internal", f"internal error: {type(exc).__name__}", request.url.path)

    app.add_middleware(_MetricsASGI, metrics=metrics)
    return app


def _answer(body: RerankRequest, ranked: RankedList, model: str, n_docs: int, n_chars: int) -> Any:
    results = ranked.results[: body.top_n] if body.top_n is not None else ranked.results
    with_docs = body.wants_documents()
    payloads = body.document_payloads() if with_docs else []
    if body.tei:
        out: list[dict[str, Any]] = []
        for r in results:
            item: dict[str, Any] = {"index": r.original_position, "score": _score(r.score)}
            if with_docs:
                item["text"] = payloads[r.original_position]["text"]
            out.append(item)
        return out
    items = []
    for r in results:
        entry: dict[str, Any] = {"index": r.original_position, "relevance_score": _score(r.score)}
        if with_docs:
            entry["document"] = payloads[r.original_position]
        items.append(entry)
    return {
        "id": str(uuid.uuid4()),
        "results": items,
        "model": model,
        "meta": {"api_version": {"version": "1"}, "billed_units": {"search_units": 1}},
        "usage": {"documents": n_docs, "characters": n_chars},
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
        finally:
            self.metrics.request_finished(label, scope.get("method", ""), status, time.perf_counter() - start)
