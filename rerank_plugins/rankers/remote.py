"""A reranker that calls a remote rerank service over HTTP: ours (``rerank-plugins serve``), Cohere, Jina, TEI.

``RemoteReranker(url, api="cohere")`` posts ``{"query", "documents": [text, ...], "top_n": n, "model"?}`` and
reads ``{"results": [{"index", "relevance_score"}]}`` (Cohere v1/v2, Jina, our service).
``api="tei"`` posts ``{"query", "texts": [...]}`` and reads TEI's list ``[{"index", "score"}]``. The shape of
the answer is recognised either way. Every document must come back exactly once, or
:class:`~rerank_plugins.errors.ModelOutputError` is raised; the local ``top_k`` / ``score_threshold`` apply on
top, as for any reranker.

Transport: httpx, ``max_concurrency`` requests in flight, timeouts, retries with exponential back-off on
408/429/5xx and connection errors (see :mod:`rerank_plugins._http`); ``arerank`` / ``arerank_batch`` are
natively async (requests gathered on the event loop). The API key is sent as ``Authorization: Bearer``
(``api_key=`` or the environment variable named by ``api_key_env``). Install ``rerank-plugins[serve]`` (httpx).
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal
from urllib.parse import urlsplit

from .._http import HTTPSettings, JSONHTTPClient
from ..base import Reranker, Scores
from ..errors import ConfigError, InvalidInputError, ModelOutputError
from ..types import Candidate, Query
from ..validation import check_choice, is_number

__all__ = ["RemoteReranker"]


class RemoteReranker(Reranker):
    """Rerank through a remote ``/rerank`` endpoint (see the module docstring).

    Args:
        url: the full endpoint, e.g. ``http://127.0.0.1:8000/rerank``, ``https://api.cohere.com/v2/rerank``,
            ``https://api.jina.ai/v1/rerank``, ``http://tei-host:8080/rerank``.
        api: ``"cohere"`` (Cohere, Jina, rerank-plugins) or ``"tei"`` request shape.
        model: model name sent in the request (required by Cohere and Jina; ours ignores it).
        api_key / api_key_env: bearer token, or the environment variable holding it (default ``RERANK_API_KEY``).
        timeout, connect_timeout, max_retries, backoff, max_backoff, max_concurrency: the transport, with the
            library's one set of defaults (:class:`~rerank_plugins._http.HTTPSettings`: 120 s per request).
        extra_body: fields merged into every request (e.g. ``{"return_documents": False}`` for Jina).
        headers: extra HTTP headers.
    """

    def __init__(
        self,
        url: str,
        *,
        api: Literal["cohere", "tei"] = "cohere",
        model: str | None = None,
        api_key: str | None = None,
        api_key_env: str = "RERANK_API_KEY",
        timeout: float = HTTPSettings.timeout,
        connect_timeout: float = HTTPSettings.connect_timeout,
        max_retries: int = HTTPSettings.max_retries,
        backoff: float = HTTPSettings.backoff,
        max_backoff: float = HTTPSettings.max_backoff,
        max_concurrency: int = HTTPSettings.max_concurrency,
        extra_body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        check_choice("api", api, ("cohere", "tei"))
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigError(f"url must be the http(s) URL of a rerank endpoint, got {url!r}")
        parts = urlsplit(url)
        if not parts.netloc:
            raise ConfigError(f"url has no host: {url!r}")
        self.url = url
        self.api = api
        self.model = model
        self.extra_body = dict(extra_body) if extra_body is not None else {}
        self._path = (parts.path or "/rerank") + (f"?{parts.query}" if parts.query else "")
        key = api_key if api_key is not None else os.environ.get(api_key_env)
        all_headers = {"Authorization": f"Bearer {key}"} if key else {}
        all_headers.update(headers or {})
        transport = HTTPSettings(timeout=timeout, connect_timeout=connect_timeout, max_retries=max_retries,
                                 backoff=backoff, max_backoff=max_backoff, max_concurrency=max_concurrency)
        self._http = JSONHTTPClient(f"{parts.scheme}://{parts.netloc}", transport, headers=all_headers,
                                    name="RemoteReranker")
        self.max_concurrency = max_concurrency
        self.name = f"remote:{model}" if model else f"remote:{url}"

    def __repr__(self) -> str:
        return f"RemoteReranker(url={self.url!r}, api={self.api!r}, model={self.model!r})"

    # ------------------------------------------------------------------ requests
    def _body(self, query: Query, candidates: Sequence[Candidate]) -> dict[str, Any]:
        texts = []
        for c in candidates:
            if c.text is None:
                raise InvalidInputError(f"candidate {c.id!r} has no text; a remote rerank service needs text")
            texts.append(c.text)
        if self.api == "tei":
            body: dict[str, Any] = {"query": query.text, "texts": texts}
        else:
            body = {"query": query.text, "documents": texts, "top_n": len(texts)}
            if self.model is not None:
                body["model"] = self.model
        return {**body, **self.extra_body}

    def _scores(self, data: Any, n: int) -> Scores:
        if isinstance(data, Mapping) and isinstance(data.get("results"), list):
            items, key = data["results"], "relevance_score"
        elif isinstance(data, list):
            items, key = data, "score"
        else:
            raise ModelOutputError(f"{self.url} answered with neither a 'results' list nor a list: {str(data)[:200]}")
        values: list[float | None] = [None] * n
        for item in items:
            if not isinstance(item, Mapping):
                raise ModelOutputError(f"{self.url}: a result is not an object: {item!r}")
            index = item.get("index")
            score = item.get(key, item.get("relevance_score", item.get("score")))
            if not (is_number(index) and isinstance(index, int) and 0 <= index < n):
                raise ModelOutputError(f"{self.url}: result index {index!r} is not in range(0, {n})")
            if not is_number(score) or math.isnan(score):
                raise ModelOutputError(f"{self.url}: result {index} has no numeric score: {score!r}")
            if values[index] is not None:
                raise ModelOutputError(f"{self.url}: document {index} came back twice")
            values[index] = float(score)
        missing = [i for i, v in enumerate(values) if v is None]
        if missing:
            raise ModelOutputError(
                f"{self.url} returned {n - len(missing)} of {n} documents (missing indices {missing[:10]}); "
                "the service must score every document (is top_n limited on the server?)"
            )
        return Scores([float(v) for v in values if v is not None])

    # ------------------------------------------------------------------ Reranker
    def _score(self, query: Query, candidates: Sequence[Candidate]) -> Scores:
        data = self._http.request("POST", self._path, self._body(query, candidates))
        return self._scores(data, len(candidates))

    def _score_many(self, queries: Sequence[Query], lists: Sequence[Sequence[Candidate]]) -> list[Scores]:
        bodies = [self._body(q, c) for q, c in zip(queries, lists)]
        if len(bodies) <= 1:
            return [self._score(q, c) for q, c in zip(queries, lists)]
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(bodies))) as pool:
            answers = list(pool.map(lambda b: self._http.request("POST", self._path, b), bodies))
        return [self._scores(a, len(c)) for a, c in zip(answers, lists)]

    async def _ascore(self, query: Query, candidates: Sequence[Candidate]) -> Scores:
        data = await self._http.arequest("POST", self._path, self._body(query, candidates))
        return self._scores(data, len(candidates))

    async def _ascore_many(self, queries: Sequence[Query], lists: Sequence[Sequence[Candidate]]) -> list[Scores]:
        return list(await asyncio.gather(*(self._ascore(q, c) for q, c in zip(queries, lists))))

    def close(self) -> None:
        self._http.close()

    async def aclose(self) -> None:
        await self._http.aclose()
