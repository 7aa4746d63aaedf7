"""Bounded load test of the service on 127.0.0.1: concurrent clients, zero errors, malformed requests rejected
with 4xx while the others keep being served. (Figures: benchmarks/serve_load.py; no timing assertions here.)"""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from _support.live_server import LiveServer  # noqa: E402

from rerank_plugins.serve import create_app  # noqa: E402
from rerank_plugins.serve.loadtest import percentile, run_load  # noqa: E402
from rerank_plugins.testing.rerankers import KeywordReranker  # noqa: E402

pytestmark = pytest.mark.server

DOCS = [f"document {i} about {'shock waves' if i % 3 == 0 else 'pasta'} and flow number {i}" for i in range(40)]
BODIES = [{"query": q, "documents": DOCS, "top_n": 5} for q in ("shock waves", "pasta flow", "number 7", "waves")]


async def test_concurrent_clients_zero_errors_and_bad_requests_rejected():
    app = create_app(KeywordReranker(traces=False), max_documents=200, batch_wait_ms=2)
    with LiveServer(app) as server:
        report = await run_load(server.url + "/rerank", BODIES, concurrency=8, max_requests=240, max_seconds=90,
                                bad_every=6, max_documents=200)
        async with httpx.AsyncClient() as c:
            health = (await c.get(server.url + "/health")).json()
            metrics = (await c.get(server.url + "/metrics")).text
            after = await c.post(server.url + "/rerank", json=BODIES[0])
    assert report.sent == 240 or report.seconds >= 90  # bounded by count, or by time on a very slow machine
    assert report.errors == 0, report.error_samples
    assert report.bad_mishandled == 0
    assert report.bad_rejected == report.sent // 6
    assert report.ok + report.bad_rejected == report.sent
    assert set(report.statuses) <= {200, 400, 413, 422}
    assert {400, 413, 422} <= set(report.statuses)
    assert report.p50 <= report.p99
    assert health["status"] == "ok" and after.status_code == 200
    assert 'kind="malformed_json"' in metrics and 'kind="too_large"' in metrics


async def test_bounds_hold_when_the_service_is_slow():
    import time

    from rerank_plugins.base import Reranker, Scores

    class Slow(Reranker):
        name = "slow"

        def _score(self, query, candidates):
            time.sleep(0.05)
            return Scores([0.0] * len(candidates))

    with LiveServer(create_app(Slow(), max_batch=1, batch_wait_ms=0)) as server:
        start = time.perf_counter()
        report = await run_load(server.url + "/rerank", BODIES, concurrency=4, max_requests=10_000, max_seconds=1.0)
        elapsed = time.perf_counter() - start
    assert report.sent < 10_000 and elapsed < 10.0
    assert report.errors == 0


def test_percentile():
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([1.0, 2.0], 50) == 1.5
    assert percentile([5.0], 99) == 5.0


async def test_impatient_clients_give_up_and_the_others_are_served():
    import time

    from rerank_plugins.base import Reranker, Scores

    class Slow(Reranker):
        name = "slow"

        def _score(self, query, candidates):
            time.sleep(0.0005 * len(candidates))
            return Scores([0.0] * len(candidates))

    heavy = {"query": "q", "documents": ["d"] * 190}
    with LiveServer(create_app(Slow(), max_documents=200, split_documents=10)) as server:
        report = await run_load(server.url + "/rerank", BODIES, concurrency=4, max_requests=80, max_seconds=30,
                                impatient=2, impatient_body=heavy, impatient_timeout=0.02, impatient_backoff=0.01)
    assert report.errors == 0 and report.ok == 80
    assert report.impatient_sent > 0 and report.impatient_timeouts > 0
    assert "impatient clients" in report.summary()
