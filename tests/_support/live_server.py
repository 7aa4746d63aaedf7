"""Run an ASGI app with uvicorn on 127.0.0.1 in a background thread (tests, benchmarks).

    with LiveServer(create_app(reranker)) as server:
        httpx.post(server.url + "/rerank", json=...)

Port 0 (default) lets the OS choose a free port; :attr:`LiveServer.url` has the real one once started.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from rerank_plugins._optional import require

from ._context import StartStop

__all__ = ["LiveServer"]


class LiveServer(StartStop):
    """uvicorn serving ``app`` on loopback in a daemon thread; :meth:`stop` shuts it down gracefully."""

    def __init__(self, app: Any, *, port: int = 0, startup_timeout: float = 30.0, log_level: str = "warning",
                 **config: Any) -> None:
        uvicorn = require("uvicorn", "serve", purpose="running the service")
        self.host = "127.0.0.1"
        self._config = uvicorn.Config(app, host=self.host, port=port, log_level=log_level, lifespan="on", **config)
        self._server = uvicorn.Server(self._config)
        self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # not the main thread
        self._thread = threading.Thread(target=self._server.run, name="live-uvicorn", daemon=True)
        self.startup_timeout = startup_timeout
        self.port = port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("uvicorn stopped during start-up (is the port free?)")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"uvicorn did not start within {self.startup_timeout}s")
            time.sleep(0.01)
        sockets = [s for server in getattr(self._server, "servers", []) for s in server.sockets]
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)

