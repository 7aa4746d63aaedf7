"""A small JSON-over-HTTP client with bounded concurrency, timeouts and retries (needs ``httpx``), and the one
home of the library's HTTP transport settings (:class:`HTTPSettings`).

Shared by the OpenAI-compatible backend and the remote reranker client: both take the same transport arguments
(``timeout``, ``connect_timeout``, ``max_retries``, ``backoff``, ``max_backoff``, ``max_concurrency``), with the
defaults of :class:`HTTPSettings`, checked there. Sync calls use one ``httpx.Client``; async calls use one
``httpx.AsyncClient`` and one :class:`asyncio.Semaphore` per event loop (an httpx async client cannot move
between loops). HTTP 408/429/500/502/503/504, timeouts and connection errors are retried up to ``max_retries``
times with exponential back-off (``backoff * 2**attempt`` seconds, jittered by +-25 %, capped at
``max_backoff``; a ``Retry-After`` header in seconds wins). Other statuses raise at once with the server's
message.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ._optional import require
from .errors import BackendError
from .validation import check_int, check_number, check_url

__all__ = ["RETRY_STATUS", "HTTPSettings", "JSONHTTPClient", "StatusError"]

#: HTTP statuses that are retried with back-off.
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})

#: ``fatal(status, error_text, body) -> message or None``: a message stops retrying at once.
FatalHook = Callable[[int, str, Any], "str | None"]


class StatusError(BackendError):
    """An HTTP error answer that is not retried; ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class HTTPSettings:
    """The transport settings of every HTTP client of the library, with their one set of defaults.

    Building one checks every value (:class:`~rerank_plugins.errors.ConfigError` naming it). ``OpenAIBackend``
    and ``RemoteReranker`` take the same arguments with these defaults (their signatures read them from here).
    """

    timeout: float = 120.0
    """Seconds one request may take: an LLM writing a long answer, or a rerank service scoring a thousand
    documents on a CPU, takes tens of seconds; a request past it is retried like any timeout."""
    connect_timeout: float = 10.0
    """Seconds to open the connection."""
    max_retries: int = 3
    """Retries after the first attempt (408/429/5xx, timeouts, connection errors)."""
    backoff: float = 0.5
    """Seconds of the exponential back-off: ``backoff * 2**attempt``, jittered, at most ``max_backoff``."""
    max_backoff: float = 8.0
    max_concurrency: int = 8
    """Requests in flight at once per client."""

    def __post_init__(self) -> None:
        for name in ("timeout", "connect_timeout"):
            check_number(name, getattr(self, name), above=0)
        for name in ("backoff", "max_backoff"):
            check_number(name, getattr(self, name), 0)
        check_int("max_retries", self.max_retries, 0)
        check_int("max_concurrency", self.max_concurrency, 1)


class _LoopState:
    def __init__(self, client: Any, semaphore: asyncio.Semaphore) -> None:
        self.client = client
        self.semaphore = semaphore


def error_text(response: Any) -> str:
    """The server's error message from a JSON error body (OpenAI, FastAPI, Cohere shapes) or its text."""
    try:
        data = response.json()
    except ValueError:
        return str(response.text)[:500]
    if isinstance(data, Mapping):
        err = data.get("error", data.get("detail", data.get("message", data)))
        if isinstance(err, Mapping):
            err = err.get("message", err)
        return str(err)[:500]
    return str(data)[:500]


class JSONHTTPClient:
    """POST/GET JSON with retries; see the module docstring."""

    def __init__(
        self,
        base_url: str,
        settings: HTTPSettings | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        name: str = "HTTP client",
        fatal: FatalHook | None = None,
    ) -> None:
        """``settings``: the transport (``None``: the defaults of :class:`HTTPSettings`)."""
        check_url("base_url", base_url)
        self.settings = settings if settings is not None else HTTPSettings()
        self._httpx = require("httpx", "openai", purpose=name)
        self.base_url = base_url.rstrip("/")
        self.name = name
        self.max_retries = self.settings.max_retries
        self.backoff = float(self.settings.backoff)
        self.max_backoff = float(self.settings.max_backoff)
        self.max_concurrency = self.settings.max_concurrency
        self.fatal = fatal
        self.headers = {"Content-Type": "application/json", **dict(headers or {})}
        self.closed = False
        self._connections()

    def _connections(self) -> None:
        """The transport state: no client yet (made on first use), a lock, the per-loop async clients."""
        self._timeout = self._httpx.Timeout(float(self.settings.timeout), connect=float(self.settings.connect_timeout))
        self._limits = self._httpx.Limits(
            max_connections=self.max_concurrency, max_keepalive_connections=self.max_concurrency
        )
        self._client: Any = None
        self._lock = threading.Lock()
        self._astates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = weakref.WeakKeyDictionary()

    # ------------------------------------------------------------------ copies
    _TRANSPORT = ("_httpx", "_timeout", "_limits", "_client", "_lock", "_astates")

    def __getstate__(self) -> dict[str, Any]:
        """Settings only: a copy or an unpickled client opens its own connections (frameworks deep-copy and
        pickle components that hold one: LangChain, LlamaIndex ``model_copy(deep=True)``, Haystack)."""
        return {k: v for k, v in self.__dict__.items() if k not in self._TRANSPORT}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._httpx = require("httpx", "openai", purpose=self.name)
        self._connections()

    # ------------------------------------------------------------------ clients
    def _sync_client(self) -> Any:
        if self.closed:
            raise BackendError(f"this {self.name} is closed")
        with self._lock:
            if self._client is None:
                self._client = self._httpx.Client(headers=self.headers, timeout=self._timeout, limits=self._limits)
            return self._client

    def _loop_state(self) -> _LoopState:
        if self.closed:
            raise BackendError(f"this {self.name} is closed")
        loop = asyncio.get_running_loop()
        state = self._astates.get(loop)
        if state is None:
            client = self._httpx.AsyncClient(headers=self.headers, timeout=self._timeout, limits=self._limits)
            state = _LoopState(client, asyncio.Semaphore(self.max_concurrency))
            self._astates[loop] = state
        return state

    def close(self) -> None:
        """Close the sync client and the async clients (on their loops when those are not running)."""
        self.closed = True
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
        for loop, state in list(self._astates.items()):
            if loop.is_closed():
                continue
            if loop.is_running():
                client = state.client
                loop.call_soon_threadsafe(lambda c=client: asyncio.ensure_future(c.aclose()))  # type: ignore[misc]
            else:
                loop.run_until_complete(state.client.aclose())
        self._astates.clear()

    async def aclose(self) -> None:
        """Close from inside a running event loop."""
        state = self._astates.pop(asyncio.get_running_loop(), None)
        if state is not None:
            await state.client.aclose()
        self.close()

    # ------------------------------------------------------------------ requests
    def delay(self, attempt: int, response: Any | None) -> float:
        if response is not None:
            retry_after = response.headers.get("retry-after")
            if retry_after is not None:
                try:
                    return min(self.max_backoff, max(0.0, float(retry_after)))
                except ValueError:
                    pass
        return min(self.max_backoff, self.backoff * (2**attempt)) * (0.75 + 0.5 * random.random())

    def _outcome(self, method: str, url: str, response: Any, body: Any) -> tuple[bool, Any]:
        """(done, value): done with the parsed JSON, or not done with the error text to retry on."""
        if response.status_code < 400:
            try:
                return True, response.json()
            except ValueError as exc:
                raise BackendError(
                    f"{method} {url}: HTTP {response.status_code} with a body that is not JSON: {response.text[:200]!r}"
                ) from exc
        text = error_text(response)
        last = f"HTTP {response.status_code}: {text}"
        if self.fatal is not None:
            message = self.fatal(response.status_code, text, body)
            if message is not None:
                raise StatusError(f"{method} {url}: {message} ({last})", response.status_code)
        if response.status_code not in RETRY_STATUS:
            raise StatusError(f"{method} {url} failed: {last}", response.status_code)
        return False, last

    def request(self, method: str, path: str, body: Any = None, *, retry: bool = True) -> Any:
        """Send one request (``path`` is appended to ``base_url``) and return the decoded JSON answer."""
        url = self.base_url + path
        client = self._sync_client()
        attempts = self.max_retries + 1 if retry else 1
        last = ""
        for attempt in range(attempts):
            response = None
            try:
                response = client.request(method, url, json=body)
            except self._httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                done, value = self._outcome(method, url, response, body)
                if done:
                    return value
                last = value
            if attempt + 1 < attempts:
                time.sleep(self.delay(attempt, response))
        raise BackendError(f"{method} {url} failed after {attempts} attempt(s): {last}")

    async def arequest(self, method: str, path: str, body: Any = None, *, retry: bool = True) -> Any:
        """Async :meth:`request`; at most ``max_concurrency`` requests of this client are in flight per loop."""
        url = self.base_url + path
        state = self._loop_state()
        attempts = self.max_retries + 1 if retry else 1
        last = ""
        for attempt in range(attempts):
            response = None
            try:
                async with state.semaphore:
                    response = await state.client.request(method, url, json=body)
            except self._httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                done, value = self._outcome(method, url, response, body)
                if done:
                    return value
                last = value
            if attempt + 1 < attempts:
                await asyncio.sleep(self.delay(attempt, response))
        raise BackendError(f"{method} {url} failed after {attempts} attempt(s): {last}")
