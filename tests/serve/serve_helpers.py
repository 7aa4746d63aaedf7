"""Shared pieces of the service tests: a slow, recording reranker and raw-socket helpers (loopback only)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from rerank_plugins.base import Reranker, Scores
from rerank_plugins.testing.rerankers import KeywordReranker
from rerank_plugins.types import Candidate, Query


class SlowRecorder(Reranker):
    """Keyword scores after ``delay`` seconds per engine call (plus ``per_document`` per document); records every
    query text it was asked to score."""

    name = "slow-recorder"

    def __init__(self, delay: float = 0.0, per_document: float = 0.0) -> None:
        self.inner = KeywordReranker(traces=False, reasoning=False)
        self.delay = delay
        self.per_document = per_document
        self.queries: list[str] = []
        self.calls = 0
        self.busy = threading.Event()
        self._lock = threading.Lock()

    def _score(self, query: Query, candidates: Sequence[Candidate]) -> Scores:
        return self._score_many([query], [candidates])[0]

    def _score_many(self, queries: Sequence[Query], lists: Sequence[Sequence[Candidate]]) -> list[Scores]:
        with self._lock:
            self.queries.extend(q.text for q in queries)
            self.calls += 1
        self.busy.set()
        if self.delay or self.per_document:
            time.sleep(self.delay + self.per_document * sum(len(c) for c in lists))
        return [self.inner._compute(q, c) for q, c in zip(queries, lists)]


def raw_request(path: str, body: bytes, *, content_length: int | None = None, host: str = "127.0.0.1",
                headers: str = "") -> bytes:
    n = len(body) if content_length is None else content_length
    return (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{headers}"
            f"Content-Length: {n}\r\n\r\n").encode() + body


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return s


def read_until_closed(sock: socket.socket, deadline: float) -> bytes:
    """Everything the server sends until it closes the connection (or ``deadline``, time.monotonic())."""
    chunks = []
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


class ServerProcess:
    """``run_server`` in a child process on 127.0.0.1 (a real uvicorn process: signals, its own interpreter).

    ``setup`` is Python source that defines ``app`` (``serve_helpers`` is importable); ``timeouts`` is the source
    of a ``ServerTimeouts(...)``. Startup waits at most ``startup`` seconds for ``GET /health``.
    """

    def __init__(self, tmp_path: Path, setup: str, *, timeouts: str = "ServerTimeouts()", startup: float = 120.0,
                 log_level: str = "warning") -> None:
        from _support.llama_server import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        script = tmp_path / f"serve_{self.port}.py"
        script.write_text(
            "import sys\n"
            f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
            "from rerank_plugins.serve import create_app\n"
            "from rerank_plugins.serve.server import ServerTimeouts, run_server\n"
            f"{textwrap.dedent(setup)}\n"
            f"run_server(app, host='127.0.0.1', port={self.port}, log_level={log_level!r}, timeouts={timeouts})\n"
        )
        root = Path(__file__).resolve().parents[2]
        env = {**os.environ, "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.log = tmp_path / f"serve_{self.port}.log"
        self._log_file = self.log.open("wb")
        self.proc = subprocess.Popen([sys.executable, str(script)], env=env, stderr=self._log_file,
                                     stdout=self._log_file)
        self.startup = startup

    def __enter__(self) -> ServerProcess:
        import httpx

        deadline = time.monotonic() + self.startup
        while True:
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise AssertionError(f"server did not start in {self.startup}s: {self.output()[-3000:]}")
            time.sleep(0.1)

    def output(self) -> str:
        self._log_file.flush()
        return self.log.read_text(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._log_file.close()

    def __exit__(self, *exc: object) -> None:
        self.close()
