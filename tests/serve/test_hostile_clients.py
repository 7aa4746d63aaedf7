"""The service under clients that leave, stall or trickle (uvicorn on 127.0.0.1, raw sockets, bounded loops).

Every wait below is a loop with a deadline; the bounds are stated where they are asserted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from _support.live_server import LiveServer  # noqa: E402
from serve_helpers import SlowRecorder, connect, raw_request, read_until_closed  # noqa: E402

from rerank_plugins.serve import create_app  # noqa: E402
from rerank_plugins.serve.server import protocol_with_header_timeout  # noqa: E402

pytestmark = pytest.mark.server

DOCS = [f"document {i} about shock waves and pasta" for i in range(200)]
ROOT = Path(__file__).resolve().parents[2]


def body(query: str, docs: list[str] = DOCS) -> bytes:
    return json.dumps({"query": query, "documents": docs}).encode()


def metric(text: str, name: str, **labels: str) -> float:
    """Value of one series of a Prometheus text page (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = r"(?m)^" + re.escape(name) + (r"\{" + re.escape(want) + r"\}" if labels else "") + r" (\S+)"
    m = re.search(pattern, text)
    return float(m.group(1)) if m else 0.0


async def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.02)


async def test_closed_sockets_and_timed_out_clients_cancel_their_queued_work():
    engine = SlowRecorder(delay=1.0)  # every engine call takes 1 s
    app = create_app(engine, max_batch=1, batch_wait_ms=0)
    with LiveServer(app) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            first = asyncio.ensure_future(http.post("/rerank", content=body("first"),
                                                    headers={"content-type": "application/json"}))
            await wait_for(lambda: asyncio.to_thread(engine.busy.is_set), 10, "the first request reaches the engine")

            # five clients send complete requests, then close their sockets while queued behind "first"
            socks = []
            for i in range(5):
                s = connect(server.port)
                s.sendall(raw_request("/rerank", body(f"gone-{i}")))
                socks.append(s)

            async def queued(n: int) -> bool:
                return (await http.get("/health")).json()["queued"] >= n

            await wait_for(lambda: queued(5), 10, "five requests queued")
            for s in socks:
                s.close()
            # and one client gives up by itself after 0.3 s while queued
            with pytest.raises(httpx.TimeoutException):
                await http.post("/rerank", content=body("timed-out"), timeout=0.3,
                                headers={"content-type": "application/json"})

            async def all_gone() -> bool:
                text = (await http.get("/metrics")).text
                return metric(text, "rerank_client_disconnects_total", path="/rerank", stage="queued") >= 6

            await wait_for(all_gone, 10, "six disconnects counted")
            t0 = time.monotonic()
            nxt = await http.post("/rerank", json={"query": "next", "documents": DOCS[:5]})
            elapsed = time.monotonic() - t0
            assert (await first).status_code == 200
            metrics = (await http.get("/metrics")).text
    assert nxt.status_code == 200 and len(nxt.json()["results"]) == 5
    # Bound: the rest of "first" (< 1 s) + "next" itself (1 s) + 1.5 s of slack. Scoring the six abandoned
    # requests first would have taken 6 s more.
    assert elapsed < 3.5, elapsed
    assert engine.queries == ["first", "next"]  # the reranker never saw the clients that left
    assert metric(metrics, "rerank_cancelled_requests_total") == 6
    assert 'kind="internal"' not in metrics
    assert metric(metrics, "rerank_requests_total", path="/rerank", method="POST", status="499") == 6


async def test_a_client_that_hangs_up_mid_body_is_a_disconnect_not_an_error():
    engine = SlowRecorder()
    with LiveServer(create_app(engine)) as server:
        s = connect(server.port)
        s.sendall(raw_request("/rerank", b'{"query": "x", "documents": [', content_length=1000))
        time.sleep(0.1)
        s.close()
        async with httpx.AsyncClient(base_url=server.url) as http:
            async def counted() -> bool:
                text = (await http.get("/metrics")).text
                return metric(text, "rerank_client_disconnects_total", path="/rerank", stage="body") == 1

            await wait_for(counted, 5, "the mid-body disconnect counted")
            metrics = (await http.get("/metrics")).text
            assert (await http.post("/rerank", json={"query": "x", "documents": ["x"]})).status_code == 200
    assert "rerank_errors_total{" not in metrics  # not a 500 "internal", not any error
    assert engine.queries == ["x"]


def test_a_trickled_body_is_cut_off_by_the_body_timeout():
    with LiveServer(create_app(SlowRecorder(), body_timeout=0.5)) as server:
        s = connect(server.port)
        payload = body("slow")
        s.sendall(raw_request("/rerank", b"", content_length=len(payload)))
        start = time.monotonic()
        answer = b""
        for byte in payload[:40]:  # one byte every 50 ms: at most 2 s of trickling
            try:
                s.sendall(bytes([byte]))
            except OSError:
                break
            s.settimeout(0.05)
            with contextlib.suppress(TimeoutError, OSError):
                answer += s.recv(65536)
            if answer:
                break
        answer += read_until_closed(s, time.monotonic() + 3)
        elapsed = time.monotonic() - start
        s.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"type":"body_timeout"' in answer.replace(b" ", b"")
    assert 0.4 < elapsed < 2.5, elapsed  # cut at 0.5 s (+ scheduling), long before the 40 bytes were sent


def test_trickled_headers_are_cut_off_by_the_header_timeout():
    app = create_app(SlowRecorder())
    with LiveServer(app, http=protocol_with_header_timeout(0.5)) as server:
        s = connect(server.port)
        start = time.monotonic()
        s.sendall(b"POST /rerank HTTP/1.1\r\nHost: x\r\n")
        answer = b""
        for _ in range(40):  # a header byte every 50 ms, never finishing: at most 2 s
            try:
                s.sendall(b"X")
            except OSError:
                break
            s.settimeout(0.05)
            with contextlib.suppress(TimeoutError, OSError):
                answer += s.recv(65536)
            if answer:
                break
        answer += read_until_closed(s, time.monotonic() + 3)
        elapsed = time.monotonic() - start
        s.close()
        # an idle connection that sends nothing at all is closed too
        idle = connect(server.port)
        idle_answer = read_until_closed(idle, time.monotonic() + 3)
        idle.close()
        ok = httpx.post(server.url + "/rerank", json={"query": "x", "documents": ["x"]})
    assert answer.startswith(b"HTTP/1.1 408") and b"header_timeout" in answer, answer[:200]
    assert 0.4 < elapsed < 2.5, elapsed
    assert idle_answer.startswith(b"HTTP/1.1 408")
    assert ok.status_code == 200  # normal clients are unaffected


SERVER_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from serve_helpers import SlowRecorder
    from rerank_plugins.serve import create_app
    from rerank_plugins.serve.server import ServerTimeouts, run_server

    app = create_app(SlowRecorder(delay=1.0), body_timeout=120, max_batch=1, batch_wait_ms=0)
    run_server(app, host="127.0.0.1", port={port}, log_level="warning",
               timeouts=ServerTimeouts(header_timeout=120, graceful_timeout=3))
""")


def test_sigterm_with_a_stalled_client_exits_in_bound_and_answers_in_flight_requests(tmp_path):
    from _support.llama_server import free_port

    port = free_port()
    script = tmp_path / "serve.py"
    script.write_text(SERVER_SCRIPT.format(tests=str(Path(__file__).parent), port=port))
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
            assert time.monotonic() < deadline, "server did not start in 60 s"
            time.sleep(0.1)
        stalled_body = connect(port)
        stalled_body.sendall(raw_request("/rerank", b'{"query": "stalled", ', content_length=500))
        stalled_headers = connect(port)
        stalled_headers.sendall(b"POST /rerank HTTP/1.1\r\nHost: x\r\n")
        in_flight = connect(port)
        in_flight.sendall(raw_request("/rerank", body("in flight", DOCS[:3])))
        time.sleep(0.3)  # the in-flight request reaches the engine (1 s per call)
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        answer = read_until_closed(in_flight, time.monotonic() + 10)
        code = proc.wait(timeout=15)
        elapsed = time.monotonic() - start
        for s in (stalled_body, stalled_headers, in_flight):
            s.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    _head, _, payload = answer.partition(b"\r\n\r\n")
    assert len(json.loads(payload)["results"]) == 3
    # Bound: graceful_timeout (3 s, the stalled body holds it that long) + 2 s for the loop ticks and lifespan.
    assert elapsed < 5.0, elapsed
    # uvicorn shuts down gracefully, then re-raises the signal it captured (exit status -SIGTERM)
    assert code in (0, -signal.SIGTERM), code
