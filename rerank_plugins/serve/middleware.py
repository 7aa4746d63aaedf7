"""ASGI layers around the service's app: request metrics (:class:`MetricsASGI`) and CORS with the service's error
body for a refused preflight (:func:`json_cors_middleware`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .._optional import require
from .metrics import Metrics
from .pipeline import path_label
from .security import error_body, send_json

__all__ = ["MetricsASGI", "json_cors_middleware"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class MetricsASGI:
    """Counts every HTTP request (status, latency) without buffering bodies."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        label = path_label(scope.get("path", ""))
        status = 500
        started = False
        start = time.perf_counter()
        self.metrics.request_started()

        async def send_wrapper(message: MutableMapping[str, Any]) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = int(message["status"])
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except asyncio.CancelledError:
            # uvicorn cancels what still runs when its graceful-shutdown timeout is over (the batcher's own
            # deadline comes first, so this is the rare request still reading its body or being prepared): answer
            # it 503 with Retry-After rather than uvicorn's "500 Internal Server Error" in text/plain
            if started:
                status = 499
                raise
            status = 503
            self.metrics.error(label, "shutting_down")
            await send_json(send, 503, error_body("the service is shutting down: the request did not finish within "
                                                  "the graceful timeout; retry on another instance", "shutting_down"),
                            headers=[(b"retry-after", b"1"), (b"connection", b"close")])
        finally:
            self.metrics.request_finished(label, scope.get("method", ""), status, time.perf_counter() - start)


def json_cors_middleware() -> type:
    """starlette's ``CORSMiddleware`` whose refused preflights (starlette: ``400 text/plain "Disallowed CORS
    origin"``) get the service's JSON error body, kind ``cors_refused``; ``on_refuse(path)`` counts them."""
    cors = require("starlette.middleware.cors", "serve")
    datastructures = require("starlette.datastructures", "serve")
    responses = require("starlette.responses", "serve")

    class JSONCORSMiddleware(cors.CORSMiddleware):  # type: ignore[misc, name-defined]
        def __init__(self, app: Any, *, on_refuse: Callable[[str], None] | None = None, **options: Any) -> None:
            super().__init__(app, **options)
            self.on_refuse = on_refuse

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and scope["method"] == "OPTIONS":
                headers = datastructures.Headers(scope=scope)
                if "origin" in headers and "access-control-request-method" in headers:
                    response = self.preflight_response(request_headers=headers)
                    if response.status_code >= 400:
                        reason = bytes(response.body).decode("utf-8", "replace")
                        if self.on_refuse is not None:
                            self.on_refuse(scope.get("path", ""))
                        kept = {k: v for k, v in response.headers.items()
                                if k.lower() not in ("content-type", "content-length")}
                        response = responses.JSONResponse(
                            error_body(f"CORS preflight refused: {reason} (origin {headers['origin']!r})",
                                       "cors_refused"), status_code=response.status_code, headers=kept)
                    await response(scope, receive, send)
                    return
            await super().__call__(scope, receive, send)

    return JSONCORSMiddleware
