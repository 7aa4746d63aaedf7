"""Requests that never reach the app (h11 refuses them, or the header clock runs out) answer with the service's
one JSON error body and count in the metrics: through a real ``run_server`` process on 127.0.0.1, raw sockets,
every read bounded by a deadline."""

from __future__ import annotations

import contextlib
import json
import re
import time

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from serve_helpers import ServerProcess, connect, read_until_closed  # noqa: E402

pytestmark = pytest.mark.server

ERROR_KEYS = {"error", "type", "error_type", "detail"}
BODY = b'{"query": "q", "documents": ["d"]}'
SETUP = """
from serve_helpers import SlowRecorder
app = create_app(SlowRecorder())
"""


def head(extra: str, path: str = "/rerank", body: bytes = BODY) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{extra}\r\n").encode() + body


def exchange(port: int, request: bytes, seconds: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    s = connect(port)
    try:
        with contextlib.suppress(OSError):  # the server may answer and close before a 1 MB request is all sent
            s.sendall(request)
        raw = read_until_closed(s, time.monotonic() + seconds)
    finally:
        s.close()
    top, _, payload = raw.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, payload


def metric(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    m = re.search(r"(?m)^" + re.escape(name) + r"\{" + re.escape(want) + r"\} (\S+)", text)
    return float(m.group(1)) if m else 0.0


def test_unparsable_requests_get_the_json_error_body_and_are_counted(tmp_path):
    cases = {
        "content-length abc": (head("Content-Length: abc\r\n"), 400, "Content-Length"),
        "content-length -5": (head("Content-Length: -5\r\n"), 400, "Content-Length"),
        "content-length twice": (head(f"Content-Length: {len(BODY)}\r\nContent-Length: 7\r\n"), 400, "Content-Length"),
        "content-length 10**20": (head(f"Content-Length: {10 ** 20}\r\n"), 400, "Content-Length"),
        "1 MB path": (head(f"Content-Length: {len(BODY)}\r\n", path="/" + "a" * 1_000_000), 431, "too long"),
        "200 KB header": (head(f"Content-Length: {len(BODY)}\r\nX-Big: {'b' * 200_000}\r\n"), 431, "too long"),
    }
    with ServerProcess(tmp_path, SETUP) as server:
        for name, (request, want_status, fragment) in cases.items():
            status, headers, payload = exchange(server.port, request)
            assert status == want_status, (name, status, payload[:200])
            assert headers["content-type"] == "application/json", (name, headers)
            data = json.loads(payload)
            assert set(data) == ERROR_KEYS and data["type"] == "bad_request", (name, data)
            assert fragment in data["error"] and data["error"] == data["detail"], (name, data)
        ok = httpx.post(server.url + "/rerank", json={"query": "q", "documents": ["d"]}, timeout=10)
        metrics = httpx.get(server.url + "/metrics", timeout=10).text
    assert ok.status_code == 200
    assert metric(metrics, "rerank_errors_total", path="other", kind="bad_request") == 6
    assert metric(metrics, "rerank_requests_total", path="other", method="", status="400") == 4
    assert metric(metrics, "rerank_requests_total", path="other", method="", status="431") == 2


def test_header_timeouts_are_counted(tmp_path):
    with ServerProcess(tmp_path, SETUP, timeouts="ServerTimeouts(header_timeout=0.5)") as server:
        s = connect(server.port)
        s.sendall(b"POST /rerank HTTP/1.1\r\nHost: x\r\n")  # never finished
        answer = read_until_closed(s, time.monotonic() + 5)  # bound: 0.5 s header timeout + slack
        s.close()
        metrics = httpx.get(server.url + "/metrics", timeout=10).text
    assert answer.startswith(b"HTTP/1.1 408")
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["type"] == "header_timeout"
    assert metric(metrics, "rerank_errors_total", path="other", kind="header_timeout") == 1
    assert metric(metrics, "rerank_requests_total", path="other", method="", status="408") == 1
