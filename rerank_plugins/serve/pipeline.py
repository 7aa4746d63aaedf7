"""The one request pipeline every wire shape of the service goes through (see :mod:`.app` for the API).

A request is handled in the same steps whatever its shape (Cohere / Jina and TEI :mod:`.cohere_api`, vLLM
:mod:`.vllm_api`): :meth:`RequestPipeline.read_body` (content type, size and time limits), :meth:`~RequestPipeline.
parse` (the pydantic body; 400 / 422), :meth:`~RequestPipeline.check` (the size limits; 413),
:meth:`~RequestPipeline.prepare` (token truncation and counting, :mod:`.scoring`), :meth:`~RequestPipeline.rank`
(the micro-batcher, watching for the client hanging up), then the wire module shapes the answer.
:meth:`~RequestPipeline.endpoint` wraps a handler so that every failure becomes the one error body
(:func:`.security.error_body`) with its status, and is counted in the metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sys
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from pydantic import ValidationError

from .._optional import require
from ..base import Reranker
from ..engine.length_policy import LengthPolicy
from ..errors import BackendError, ConfigError, InvalidInputError, ModelOutputError, RerankError
from ..types import Candidate, Query, RankedList, as_query
from ..validation import check_int
from .batcher import MicroBatcher, Overloaded
from .long_documents import LengthPolicies, PolicyRefused
from .metrics import Metrics
from .scoring import ScoreMapper, TokenTools, count_words

__all__ = ["KNOWN_PATHS", "ClientGone", "HTTPProblem", "Prepared", "RequestPipeline", "ServiceLimits", "finite",
           "path_label"]

RERANK_PATHS = ("/rerank", "/v1/rerank", "/v2/rerank")
SCORE_PATHS = ("/score", "/v1/score")
KNOWN_PATHS = frozenset({*RERANK_PATHS, *SCORE_PATHS, "/health", "/metrics", "/v1/models"})
_MOST_NEGATIVE = -sys.float_info.max


def path_label(path: str) -> str:
    """The ``path`` label of the metrics (unknown paths are ``other``: no unbounded label values)."""
    return path if path in KNOWN_PATHS else "other"


def finite(value: float) -> float:
    """JSON has no infinities: ``-inf`` / ``inf`` become the most negative / largest finite double."""
    return value if math.isfinite(value) else (_MOST_NEGATIVE if value < 0 else sys.float_info.max)


class HTTPProblem(Exception):
    """A request error with its status and kind (answered with the service's error body)."""

    def __init__(self, status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message
        self.headers = headers


class ClientGone(Exception):
    """The client hung up (``stage``: ``body``, ``queued`` or ``running``)."""

    def __init__(self, stage: str) -> None:
        super().__init__(stage)
        self.stage = stage


class ServiceLimits:
    """Size limits of one service (see :func:`~rerank_plugins.serve.create_app`)."""

    def __init__(
        self,
        *,
        max_documents: int = 1000,
        max_chars_per_document: int = 32_768,
        max_query_chars: int = 8_192,
        max_total_chars: int = 4_000_000,
        max_body_bytes: int | None = None,
    ) -> None:
        self.max_documents = check_int("max_documents", max_documents, 1)
        self.max_chars_per_document = check_int("max_chars_per_document", max_chars_per_document, 1)
        self.max_query_chars = check_int("max_query_chars", max_query_chars, 1)
        self.max_total_chars = check_int("max_total_chars", max_total_chars, 1)
        check_int("max_body_bytes", max_body_bytes, 1, optional=True)
        # JSON can take up to 6 bytes per character (\\uXXXX escapes) plus per-document overhead
        derived = 6 * max_total_chars + 64 * max_documents + 65_536
        self.max_body_bytes: int = max_body_bytes if max_body_bytes is not None else derived

    def check(self, query: str, texts: list[str]) -> None:
        if len(texts) > self.max_documents:
            raise HTTPProblem(413, "too_large",
                              f"too many documents: {len(texts)} > max_documents={self.max_documents}")
        if len(query) > self.max_query_chars:
            raise HTTPProblem(413, "too_large",
                              f"the query has {len(query)} characters; the limit is {self.max_query_chars}")
        total = len(query)
        for i, text in enumerate(texts):
            if len(text) > self.max_chars_per_document:
                raise HTTPProblem(413, "too_large", f"document {i} has {len(text)} characters; "
                                  f"the limit is max_chars_per_document={self.max_chars_per_document}")
            total += len(text)
        if total > self.max_total_chars:
            raise HTTPProblem(413, "too_large",
                              f"the request has {total} characters in all; the limit is {self.max_total_chars}")


def validation_message(exc: ValidationError) -> tuple[int, str, str]:
    """(status, kind, message) of a pydantic error: 400 for broken JSON, 422 for the wrong shape."""
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


def check_content_type(value: str | None) -> None:
    """JSON bodies only (415 otherwise): a body without ``Content-Type`` is refused like ``text/plain``, since a
    browser sends either without a CORS preflight."""
    if value is None:
        raise HTTPProblem(415, "unsupported_media_type",
                          "the body must be JSON sent as 'Content-Type: application/json'; the request has no "
                          "Content-Type")
    main = value.split(";", 1)[0].strip().lower()
    if main == "application/json" or (main.startswith("application/") and main.endswith("+json")):
        return
    raise HTTPProblem(415, "unsupported_media_type",
                      f"the body must be JSON sent as 'Content-Type: application/json', got {value!r}")


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


async def _disconnected(receive: Callable[[], Awaitable[MutableMapping[str, Any]]]) -> None:
    while True:
        message = await receive()
        if message.get("type") == "http.disconnect":
            return


@dataclass
class Prepared:
    """A request ready for the engine: its texts (cut as asked), the engine to run them on, and its token count
    (:meth:`tokens`, computed in a worker thread when asked)."""

    texts: list[str]
    engine: Reranker
    count: Callable[[], int]

    async def tokens(self) -> int:
        return await asyncio.to_thread(self.count)


class RequestPipeline:
    """The steps every request of one service goes through (see the module docstring)."""

    def __init__(self, engine: Reranker, *, name: str, limits: ServiceLimits, batcher: MicroBatcher,
                 metrics: Metrics, tokens: TokenTools, mapper: ScoreMapper, body_timeout: float | None,
                 policies: LengthPolicies | None = None) -> None:
        self.engine = engine
        self.policies = policies if policies is not None else LengthPolicies(engine)
        self.name = name
        self.limits = limits
        self.batcher = batcher
        self.metrics = metrics
        self.tokens = tokens
        self.mapper = mapper
        self.body_timeout = body_timeout
        self._token_lock = threading.Lock()
        self._responses = require("fastapi.responses", "serve")
        self._requests = require("starlette.requests", "serve")

    # ------------------------------------------------------------------ answers
    def json(self, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Any:
        return self._responses.JSONResponse(payload, status_code=status, headers=headers)

    def error_response(self, status: int, kind: str, message: str, path: str,
                       headers: dict[str, str] | None = None) -> Any:
        from .security import error_body

        self.metrics.error(path_label(path), kind)
        extra = dict(headers or {})
        if status == 503:
            extra.setdefault("Retry-After", "1")
        if status == 408:
            extra.setdefault("Connection", "close")
        return self.json(error_body(message, kind), status, extra or None)

    # ------------------------------------------------------------------ the steps
    async def read_body(self, request: Any) -> bytes:
        check_content_type(request.headers.get("content-type"))
        limit = self.limits.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise HTTPProblem(413, "too_large", f"the request body has {declared} bytes; the limit is {limit}")

        async def collect() -> bytes:
            chunks, size = [], 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise HTTPProblem(413, "too_large", f"the request body exceeds {limit} bytes")
                chunks.append(chunk)
            return b"".join(chunks)

        try:
            if self.body_timeout is None:
                return await collect()
            return await asyncio.wait_for(collect(), self.body_timeout)
        except asyncio.TimeoutError:
            raise HTTPProblem(408, "body_timeout",
                              f"the request body did not arrive within body_timeout={self.body_timeout:g}s") from None
        except self._requests.ClientDisconnect:
            raise ClientGone("body") from None

    @staticmethod
    def parse(model: Any, raw: bytes) -> Any:
        try:
            return model.model_validate_json(raw)
        except ValidationError as exc:
            status, kind, message = validation_message(exc)
            raise HTTPProblem(status, kind, message) from None

    def check(self, query: str, texts: list[str]) -> Query:
        """The size limits (413), then the query itself (422); returns the engine's query."""
        self.limits.check(query, texts)
        try:
            return as_query(query)
        except InvalidInputError as exc:
            raise HTTPProblem(422, "validation", f"query: {exc}") from None

    async def prepare(self, query: str, texts: list[str], body: Any) -> Prepared:
        """The request's long-document policy and token truncation (in a worker thread): the texts for the engine,
        the engine to run them on (:mod:`.long_documents`) and their token count, computed when asked
        (:meth:`Prepared.tokens`: after ranking, so a request whose client leaves never pays for it)."""
        strategy = getattr(body, "long_document_strategy", None)
        max_chunks = getattr(body, "max_chunks_per_doc", None)
        cuts = bool(getattr(body, "truncate", None)) or body.truncate_prompt_tokens is not None
        if cuts and (strategy == "chunk" or (strategy is None and max_chunks is not None)):
            raise HTTPProblem(422, "validation", "long_document_strategy 'chunk' scores every window of a long "
                              "document; truncate: true / truncate_prompt_tokens would cut it to one window first: "
                              "send one or the other")
        if cuts and strategy is None:
            strategy = "truncate"  # the request's own truncation wins over a service default of 'chunk'
        try:
            engine, policy = self.policies.resolve(strategy, max_chunks)
        except PolicyRefused as exc:
            raise HTTPProblem(422, "unsupported", str(exc)) from None
        chunks = policy if policy is not None and policy.chunking else None
        truncate = getattr(body, "truncate", None)
        texts = await asyncio.to_thread(self._prepare, query, texts, body)
        if truncate is False and self.tokens.available and self.tokens.max_length is not None:
            n = await asyncio.to_thread(self._count, query, texts, chunks, False)  # the 413 check needs it now
            return Prepared(texts, engine, lambda: n)
        return Prepared(texts, engine, partial(self._count, query, texts, chunks, True))

    def _prepare(self, query: str, texts: list[str], body: Any) -> list[str]:
        tokens = self.tokens
        max_tokens_per_doc = getattr(body, "max_tokens_per_doc", None)
        truncate = getattr(body, "truncate", None)
        direction = getattr(body, "truncation_direction", None)
        prompt_tokens = body.truncate_prompt_tokens
        asked = [n for n, v in (("max_tokens_per_doc", max_tokens_per_doc), ("truncate", truncate),
                                ("truncation_direction", direction), ("truncate_prompt_tokens", prompt_tokens))
                 if v is not None]
        if not tokens.available:
            if asked:
                raise HTTPProblem(422, "unsupported", tokens.unavailable_message(" / ".join(asked)))
            return texts
        if not asked:
            return texts
        side = direction or "right"
        max_length = tokens.max_length
        with self._token_lock:
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
                room = tokens.room(query, budget)
                if room < 1:
                    raise HTTPProblem(413, "too_large", f"the query leaves no room for a document within {budget} "
                                      "tokens (query tokens plus the pair's special tokens); shorten the query")
                texts, _ = tokens.cut(texts, room, side)
        return texts

    def _count(self, query: str, texts: list[str], chunks: LengthPolicy | None, cap: bool) -> int:
        """Tokens the model reads of the request (every window's in chunk mode); words without a tokenizer.
        ``cap=False`` (``truncate: false``) refuses a document over the model's length (413)."""
        tokens = self.tokens
        if not tokens.available:
            return count_words(query, texts)
        with self._token_lock:
            if chunks is not None:
                try:
                    lengths = tokens.chunked_lengths(query, texts, chunks)
                except ConfigError as exc:
                    raise HTTPProblem(413, "too_large", str(exc)) from None
                return tokens.query_tokens(query) + sum(lengths)
            lengths = tokens.input_lengths(query, texts, cap=cap)
            max_length = tokens.max_length
            if not cap and max_length is not None:
                for i, n in enumerate(lengths):
                    if n > max_length:
                        raise HTTPProblem(413, "too_large", f"document {i}: the model input has {n} tokens and the "
                                          f"model reads at most {max_length}; send truncate: true")
            return tokens.query_tokens(query) + sum(lengths)

    async def rank(self, request: Any, groups: list[tuple[Query, list[Candidate]]],
                   engine: Reranker | None = None) -> list[RankedList]:
        """Score each (query, candidates) group through the micro-batcher (on ``engine``, a variant of the
        service's engine; default: the service's); a client that hangs up meanwhile cancels its queued work
        (:class:`ClientGone`)."""
        batcher = self.batcher
        futures = [batcher.enqueue(q, c, engine) for q, c in groups]
        combined: asyncio.Future[list[RankedList]] = asyncio.gather(*futures)
        watcher: asyncio.Future[None] = asyncio.ensure_future(_disconnected(request.receive))
        try:
            waiting: set[asyncio.Future[Any]] = {combined, watcher}
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            combined.cancel()
            combined.add_done_callback(_retrieve)  # nobody awaits it any more
            raise
        finally:
            watcher.cancel()
        if combined.done():
            return list(combined.result())
        stage = "running" if any(batcher.started(f) for f in futures) else "queued"
        combined.cancel()  # cancels every queued job: the batcher drops them unscored
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await combined
        raise ClientGone(stage)

    # ------------------------------------------------------------------ endpoints
    async def guarded(self, request: Any, handler: Callable[[Any], Awaitable[Any]]) -> Any:
        """``handler(request)``, with every failure turned into the service's error answer."""
        from .security import error_body

        path = request.url.path
        try:
            return await handler(request)
        except ClientGone as exc:
            self.metrics.disconnect(path_label(path), exc.stage)
            # nobody reads this answer; it records status 499 ("client closed request")
            return self.json(error_body(f"the client disconnected ({exc.stage})", "client_disconnect"), 499)
        except HTTPProblem as exc:
            return self.error_response(exc.status, exc.kind, exc.message, path, exc.headers)
        except Overloaded as exc:
            kind = "shutting_down" if "shutting down" in str(exc) else "overloaded"
            return self.error_response(503, kind, str(exc), path)
        except InvalidInputError as exc:
            return self.error_response(422, "validation", str(exc), path)
        except BackendError as exc:
            return self.error_response(502, "backend", f"the model backend failed: {exc}", path)
        except ModelOutputError as exc:
            return self.error_response(500, "model_output", f"the model produced unusable output: {exc}", path)
        except RerankError as exc:
            return self.error_response(500, "rerank", f"reranking failed: {exc}", path)
        except Exception as exc:  # keep serving whatever happens in one request
            return self.error_response(500, "internal", f"internal error: {type(exc).__name__}: {exc}", path)

    def endpoint(self, handler: Callable[[RequestPipeline, Any], Awaitable[Any]]) -> Callable[[Any], Awaitable[Any]]:
        """A FastAPI endpoint running ``handler(pipeline, request)`` under :meth:`guarded`."""
        fastapi = require("fastapi", "serve")

        async def run(request: Any) -> Any:
            return await self.guarded(request, lambda r: handler(self, r))

        # annotations are strings here (PEP 563); FastAPI needs the real class to inject the request
        run.__annotations__["request"] = fastapi.Request
        run.__name__ = getattr(handler, "__name__", "endpoint")
        return run


def openapi_body(model: Any) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of a route that reads ``model`` itself (for ``/docs``)."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}
