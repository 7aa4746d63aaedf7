"""Pure ASGI layers around the service's app: request metrics (:class:`MetricsASGI`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .metrics import Metrics
from .pipeline import path_label

__all__ = ["MetricsASGI"]

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
