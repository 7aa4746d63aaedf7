"""A scripted HTTP server on 127.0.0.1 in a background thread, for testing HTTP clients (retries, timeouts).

Each incoming POST/GET takes the next scripted :class:`Reply` (or the ``default`` once the script is used up),
optionally after a delay, and is recorded in :attr:`StubHTTPServer.requests`::

    with StubHTTPServer([Reply(500, {"error": "boom"}), Reply(200, {"ok": True})]) as stub:
        httpx.post(stub.url + "/v1/completions", json={...})
        assert [r.path for r in stub.requests] == [...]

Only the standard library is used; the server binds to loopback and is shut down on exit.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ._context import StartStop

__all__ = ["Recorded", "Reply", "StubHTTPServer"]


@dataclass(frozen=True)
class Reply:
    """One scripted answer: status, JSON body (or raw text when ``body`` is a str), headers, delay in seconds."""

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    body: Any
    headers: Mapping[str, str]


class StubHTTPServer(StartStop):
    """Serve scripted replies; ``replies`` may also be a callable ``f(Recorded) -> Reply``."""

    def __init__(
        self,
        replies: Sequence[Reply] | Callable[[Recorded], Reply] = (),
        *,
        default: Reply | None = None,
    ) -> None:
        self._script = replies
        self._next = 0
        self.default = default if default is not None else Reply(404, {"error": "no scripted reply left"})
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # silence the default stderr log
                return

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", errors="replace")
                rec = Recorded(method, self.path, body, dict(self.headers))
                reply = stub._take(rec)
                if reply.delay:
                    stub._wait(reply.delay)
                payload = (reply.body if isinstance(reply.body, str) else json.dumps(reply.body)).encode("utf-8")
                try:
                    self.send_response(reply.status)
                    ctype = "text/plain" if isinstance(reply.body, str) else "application/json"
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(payload)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

            def do_POST(self) -> None:
                self._handle("POST")

            def do_GET(self) -> None:
                self._handle("GET")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        port = int(self._server.server_address[1])
        return f"http://127.0.0.1:{port}"

    def _take(self, rec: Recorded) -> Reply:
        with self._lock:
            self.requests.append(rec)
        if callable(self._script):
            return self._script(rec)  # called outside the lock: concurrent requests run concurrently
        with self._lock:
            if self._next < len(self._script):
                reply = self._script[self._next]
                self._next += 1
                return reply
            return self.default

    def _wait(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    def start(self) -> StubHTTPServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

