"""Shared pieces of the service tests: a slow, recording reranker and raw-socket helpers (loopback only)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Sequence

from rerank_plugins.base import Reranker, Scores
from rerank_plugins.testing.rerankers import KeywordReranker
from rerank_plugins.types import Candidate, Query


class SlowRecorder(Reranker):
    """Keyword scores after ``delay`` seconds per engine call; records every query text it was asked to score."""

    name = "slow-recorder"

    def __init__(self, delay: float = 0.0) -> None:
        self.inner = KeywordReranker(traces=False, reasoning=False)
        self.delay = delay
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
        if self.delay:
            time.sleep(self.delay)
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
