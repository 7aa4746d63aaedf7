"""Run the rerank app with uvicorn, with timeouts for slow clients and a bounded graceful shutdown.

uvicorn (0.54) has a keep-alive timeout but no timeout for a request's headers: a client that opens a
connection and sends nothing, or trickles header bytes, holds it forever. :func:`protocol_with_header_timeout`
subclasses uvicorn's h11 protocol (``uvicorn/protocols/http/h11_impl.py``, ``H11Protocol``) so that the request
line and headers must arrive within ``header_timeout`` seconds of the connection opening or of the previous
response; otherwise the service answers 408 and closes the connection. A request h11 cannot parse (a bad or
conflicting ``Content-Length``, a request head over 16 KiB: a long path or header) gets the service's JSON error
body (400, or 431 for the long head) where uvicorn sends ``text/plain "Invalid HTTP request received."``; both
count in the app's metrics (``path="other"``). The body has its own limit inside the
app (``create_app(body_timeout=...)``, 408 too).

Shutdown (SIGTERM / SIGINT): uvicorn stops accepting connections, closes idle ones (a stalled client that has
not finished its headers is idle), lets requests whose body has arrived finish, and after
``graceful_timeout`` seconds cancels whatever still runs; then the app's lifespan stops the micro-batcher.
:func:`run_server` tells the app when the shutdown begins (``app.state.begin_shutdown``): the micro-batcher
finishes what it can (large requests the oldest first) and, :func:`graceful_margin` before uvicorn's deadline,
answers every request still waiting or running 503 with ``Retry-After`` (:meth:`.batcher.MicroBatcher.drain`), so
no request gets uvicorn's ``500 text/plain``; one that uvicorn cancels all the same (still reading its body) gets
the 503 from the metrics layer. The process exits within about ``graceful_timeout`` + 1 s (plus the engine call
running at that moment, which a thread cannot be interrupted in).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from .._optional import require
from ..validation import check_number
from .metrics import Metrics
from .security import error_body

__all__ = ["ServerTimeouts", "graceful_margin", "protocol_with_header_timeout", "run_server", "server_class",
           "uvicorn_config"]


@dataclass(frozen=True)
class ServerTimeouts:
    """Seconds: ``header_timeout`` (request line + headers), ``keep_alive`` (idle between requests),
    ``graceful_timeout`` (in-flight work at shutdown)."""

    header_timeout: float = 10.0
    keep_alive: float = 5.0
    graceful_timeout: float = 10.0

    def __post_init__(self) -> None:
        for name in ("header_timeout", "keep_alive", "graceful_timeout"):
            check_number(name, getattr(self, name), above=0)


_REASONS = {400: b"Bad Request", 408: b"Request Timeout", 413: b"Content Too Large", 414: b"URI Too Long",
            431: b"Request Header Fields Too Large", 501: b"Not Implemented"}


def _raw_error(status: int, kind: str, message: str) -> bytes:
    """A whole HTTP/1.1 answer with the service's error body (:func:`.security.error_body`), closing the
    connection: what the protocol writes itself, before any request reached the app."""
    body = json.dumps(error_body(message, kind)).encode()
    reason = _REASONS.get(status, b"Error")
    return (b"HTTP/1.1 " + str(status).encode() + b" " + reason + b"\r\ncontent-type: application/json\r\n"
            b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def _invalid_request(exc: Exception | None) -> tuple[int, str]:
    """(status, message) for a request h11 could not parse (``exc``: its ``RemoteProtocolError``)."""
    hint = getattr(exc, "error_status_hint", 400)
    status = hint if hint in _REASONS else 400
    detail = str(exc) if exc is not None else "unparsable request"
    if status == 431:
        return 431, ("the request line and headers are too long (h11's limit of 16 KiB for the request head, "
                     f"a long path included): {detail}")
    return status, f"invalid HTTP request: {detail}"


def protocol_with_header_timeout(header_timeout: float, metrics: Metrics | None = None) -> type:
    """uvicorn's ``H11Protocol`` with a deadline for each request's headers (see the module docstring), and the
    service's JSON error body for requests h11 cannot parse (uvicorn answers ``400 text/plain "Invalid HTTP
    request received."``). Both answers count in ``metrics`` (``path="other"``: no path was read)."""
    h11_impl = require("uvicorn.protocols.http.h11_impl", "serve")
    h11 = require("h11", "serve")

    class H11WithHeaderTimeout(h11_impl.H11Protocol):  # type: ignore[misc, name-defined]
        _header_timer: asyncio.TimerHandle | None = None
        _protocol_error: Exception | None = None
        _opened: float = 0.0

        def _waiting_for_headers(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

        def _arm(self) -> None:
            if self._header_timer is None:
                self._opened = time.perf_counter()
                self._header_timer = self.loop.call_later(header_timeout, self._header_deadline)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            # keep h11's parse error for send_400_response (uvicorn drops it); the h11 connection object is
            # this protocol's for its whole life (start_next_cycle reuses it)
            next_event = self.conn.next_event

            def remembering_next_event() -> Any:
                try:
                    return next_event()
                except h11.RemoteProtocolError as exc:
                    self._protocol_error = exc
                    raise

            self.conn.next_event = remembering_next_event
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.transport.is_closing():
                self._disarm()
            elif self._waiting_for_headers():
                self._arm()
            else:
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # idle keep-alive connections are uvicorn's keep-alive timer's; the header clock restarts on data
            self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _count(self, status: int, kind: str) -> None:
            if metrics is not None:
                metrics.error("other", kind)
                metrics.request_started()
                metrics.request_finished("other", "", status, time.perf_counter() - self._opened)

        def send_400_response(self, msg: str) -> None:
            status, message = _invalid_request(self._protocol_error)
            self._count(status, "bad_request")
            self.transport.write(_raw_error(status, "bad_request", message))
            self.transport.close()

        def _header_deadline(self) -> None:
            self._header_timer = None
            if self.transport.is_closing() or not self._waiting_for_headers():
                return
            if self.cycle is not None and self.timeout_keep_alive_task is not None:
                return  # an idle keep-alive connection (no bytes of a new request yet): uvicorn's timer
            self._count(408, "header_timeout")
            self.transport.write(_raw_error(408, "header_timeout", "the request headers did not arrive in time"))
            self.transport.close()

    return H11WithHeaderTimeout


def uvicorn_config(app: Any, *, host: str = "127.0.0.1", port: int = 8000, timeouts: ServerTimeouts | None = None,
                   log_level: str = "info", **options: Any) -> Any:
    """A ``uvicorn.Config`` for ``app`` with the service's timeouts (``options`` go to uvicorn)."""
    uvicorn = require("uvicorn", "serve", purpose="running the service")
    t = timeouts if timeouts is not None else ServerTimeouts()
    return uvicorn.Config(
        app, host=host, port=port, log_level=log_level, lifespan="on",
        http=protocol_with_header_timeout(t.header_timeout, metrics=getattr(getattr(app, "state", None), "metrics",
                                                                            None)),
        timeout_keep_alive=t.keep_alive, timeout_graceful_shutdown=t.graceful_timeout, **options,
    )


def graceful_margin(graceful_timeout: float) -> float:
    """Seconds before uvicorn's own deadline at which the app answers what is left (503): time to write the
    answers and close the connections before uvicorn cancels the tasks."""
    return min(0.5, 0.2 * graceful_timeout)


def server_class() -> type:
    """``uvicorn.Server`` that tells the app when the graceful shutdown begins (``app.state.begin_shutdown``)."""
    uvicorn = require("uvicorn", "serve", purpose="running the service")

    class GracefulServer(uvicorn.Server):  # type: ignore[misc, name-defined]
        async def shutdown(self, sockets: Any = None) -> None:
            begin = getattr(getattr(self.config.app, "state", None), "begin_shutdown", None)
            if begin is not None:
                timeout = self.config.timeout_graceful_shutdown
                begin(max(0.0, timeout - graceful_margin(timeout)))
            await super().shutdown(sockets)

    return GracefulServer


def run_server(app: Any, **kwargs: Any) -> None:
    """Serve ``app`` until SIGTERM / SIGINT (arguments of :func:`uvicorn_config`)."""
    server_class()(uvicorn_config(app, **kwargs)).run()
