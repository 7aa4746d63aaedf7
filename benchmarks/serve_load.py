"""Load test of ``rerank-plugins serve`` on 127.0.0.1: throughput and latency with and without micro-batching.

Requests: the Cranfield queries, each with its BM25 (bm25s, Lucene) top-``--candidates`` documents as
``{"query", "documents": [...], "top_n": 10}``. The service runs in a child process (uvicorn, one worker, so the
load generator does not share its interpreter) and is stopped at the end; ``--clients`` asyncio clients send at
most ``--requests`` requests and stop after ``--seconds`` whatever happens (requests still running then are
abandoned after a 5 s grace and counted as ``cut``, not as errors). Every ``--bad-every``-th request is
malformed (invalid JSON, wrong types, missing documents, too many documents) and must get a 4xx with a message
while the good ones keep succeeding (zero errors).

Systems, same requests, same run:

* ``in-process``: ``reranker.rerank`` called in a loop, no HTTP (the serial ceiling of one engine);
* ``service, batching``: micro-batching on (``max_batch`` 32, 5 ms wait);
* ``service, no batching``: ``max_batch`` 1 (one engine call per request);
* ``service, batching, +N impatient``: the batching service again, while ``--impatient`` more clients send
  ``--impatient-docs``-document requests with a ``--impatient-timeout`` timeout, hang up and retry after
  ``--impatient-backoff`` (as retrying SDKs do). The service cancels their queued work when they hang up; the
  figure to compare is the *other* clients' throughput against the plain batching run.

Rerankers: ``keyword`` (dependency-free; shows the service's own cost), ``sleepy`` (keyword scores after a sleep of
``--ms-per-doc`` per document: a model-bound engine that leaves the CPU to the HTTP side, as a GPU model does)
and the bundled ``minilm``.

    python benchmarks/serve_load.py [--rerankers keyword,sleepy,minilm] [--clients 8] [--requests 200]
        [--seconds 60] [--impatient 4] [--impatient-docs 1000] [--impatient-timeout 0.3]
        [--systems in-process,batching,no-batching,impatient]

The real-model impatient row (issue 21 item 2): ``--rerankers minilm --clients 4 --candidates 8 --impatient 4
--impatient-docs 1000 --impatient-timeout 0.3 --systems batching,impatient``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _common import save_results

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def build_reranker(name: str, ms_per_doc: float = 0.5) -> Any:
    if name == "keyword":
        from rerank_plugins.testing.rerankers import KeywordReranker

        return KeywordReranker(reasoning=False, traces=False)
    if name == "sleepy":
        return _sleepy(ms_per_doc)
    from rerank_plugins import load_reranker

    return load_reranker(name)


def _sleepy(ms_per_doc: float) -> Any:
    from rerank_plugins.base import Reranker
    from rerank_plugins.testing.rerankers import KeywordReranker

    class Sleepy(Reranker):
        """Keyword scores after ``ms_per_doc`` ms of sleep per document (one engine call sleeps for all)."""

        name = "sleepy"

        def __init__(self) -> None:
            self.inner = KeywordReranker(reasoning=False, traces=False)

        def _score(self, query: Any, candidates: Any) -> Any:
            return self._score_many([query], [candidates])[0]

        def _score_many(self, queries: Any, lists: Any) -> Any:
            time.sleep(ms_per_doc / 1000.0 * sum(len(c) for c in lists))
            return [self.inner._compute(q, c) for q, c in zip(queries, lists)]

    return Sleepy()


def serve(args: argparse.Namespace) -> None:
    """Child mode: serve one reranker until terminated."""
    import uvicorn

    from rerank_plugins.serve import create_app

    app = create_app(build_reranker(args.serve, args.ms_per_doc), model_name=args.serve, max_batch=args.max_batch,
                     batch_wait_ms=args.batch_wait_ms, split_documents=args.split_documents)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


def cranfield_bodies(candidates: int) -> list[dict[str, Any]]:
    from rerank_plugins.eval.datasets import load_cranfield
    from rerank_plugins.eval.first_stage import bm25_run

    ds = load_cranfield()
    run = bm25_run(ds, k=candidates)
    return [
        {"query": ds.queries[q], "documents": [ds.document_text(d) for d, _ in run[q]], "top_n": 10}
        for q in ds.queries
    ]


def impatient_body(candidates: int) -> dict[str, Any]:
    from rerank_plugins.eval.datasets import load_cranfield

    ds = load_cranfield()
    query = next(iter(ds.queries.values()))
    doc_ids = list(ds.corpus)[:candidates]
    return {"query": query, "documents": [ds.document_text(d) for d in doc_ids], "top_n": 10}


def start_service(name: str, max_batch: int, wait_ms: float, ms_per_doc: float = 0.5, split: int = 32,
                  timeout: float = 180.0) -> tuple[subprocess.Popen, str]:
    from _support.llama_server import free_port

    port = free_port()
    cmd = [sys.executable, __file__, "--serve", name, "--port", str(port), "--max-batch", str(max_batch),
           "--batch-wait-ms", str(wait_ms), "--ms-per-doc", str(ms_per_doc), "--split-documents", str(split)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"service exited: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.2)
    stop(proc)
    raise TimeoutError(f"service not ready after {timeout}s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)


def in_process(name: str, bodies: list[dict[str, Any]], max_requests: int, max_seconds: float,
               ms_per_doc: float = 0.5) -> dict[str, Any]:
    reranker = build_reranker(name, ms_per_doc)
    reranker.rerank(bodies[0]["query"], bodies[0]["documents"])  # warm-up, as the service has loaded its model
    latencies = []
    start = time.perf_counter()
    n = 0
    while n < max_requests and time.perf_counter() - start < max_seconds:
        body = bodies[n % len(bodies)]
        t0 = time.perf_counter()
        reranker.rerank(body["query"], body["documents"], top_k=body["top_n"])
        latencies.append(time.perf_counter() - t0)
        n += 1
    seconds = time.perf_counter() - start
    from rerank_plugins.serve.loadtest import percentile

    return {"ok": n, "sent": n, "seconds": seconds, "throughput": n / seconds, "p50": percentile(latencies, 50),
            "p99": percentile(latencies, 99), "errors": 0, "bad_rejected": 0, "bad_mishandled": 0, "cut": 0}


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return float("nan")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rerankers", default="keyword,sleepy,minilm")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--candidates", type=int, default=20)
    ap.add_argument("--bad-every", type=int, default=10)
    ap.add_argument("--impatient", type=int, default=4, help="clients that time out and retry (0: no such run)")
    ap.add_argument("--impatient-docs", type=int, default=1000)
    ap.add_argument("--impatient-timeout", type=float, default=0.3)
    ap.add_argument("--impatient-backoff", type=float, default=0.1)
    ap.add_argument("--ms-per-doc", type=float, default=0.5, help="the sleepy reranker's cost per document")
    ap.add_argument("--split-documents", type=int, default=32,
                    help="create_app(split_documents=...) of every service run (0: off)")
    ap.add_argument("--systems", default="in-process,batching,no-batching,impatient",
                    help="which runs to make (the impatient ratio needs batching and impatient)")
    ap.add_argument("--output", default=str(Path(__file__).parent / "results" / "serve_load.json"))
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--max-batch", type=int, default=32, help=argparse.SUPPRESS)
    ap.add_argument("--batch-wait-ms", type=float, default=5.0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        serve(args)
        return 0

    from rerank_plugins.serve.loadtest import run_load

    bodies = cranfield_bodies(args.candidates)
    heavy = impatient_body(args.impatient_docs) if args.impatient else None
    print(f"{len(bodies)} Cranfield queries x BM25 top-{args.candidates}; {args.clients} clients, at most "
          f"{args.requests} requests / {args.seconds:.0f}s per system; every {args.bad_every}th request malformed\n")
    header = (f"{'reranker':<8} {'system':<22} {'ok':>5} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} "
              f"{'cut':>4} {'4xx ok':>6} {'bad!':>5} {'vs in-proc':>10}")
    print(header)
    rows = []
    chosen = set(args.systems.split(","))
    systems = [s for s, key in ((("service, batching", 32, 5.0, 0), "batching"),
                                (("service, no batching", 1, 0.0, 0), "no-batching")) if key in chosen]
    if args.impatient and "impatient" in chosen:
        systems.append((f"service, batching, +{args.impatient} impatient", 32, 5.0, args.impatient))
    for name in args.rerankers.split(","):
        results = {}
        if "in-process" in chosen:
            results["in-process (serial)"] = in_process(name, bodies, args.requests, args.seconds, args.ms_per_doc)
        for label, max_batch, wait, impatient in systems:
            proc, url = start_service(name, max_batch, wait, args.ms_per_doc, args.split_documents)
            try:
                rep = asyncio.run(run_load(url + "/rerank", bodies, concurrency=args.clients,
                                           max_requests=args.requests, max_seconds=args.seconds,
                                           bad_every=args.bad_every, impatient=impatient, impatient_body=heavy,
                                           impatient_timeout=args.impatient_timeout,
                                           impatient_backoff=args.impatient_backoff))
                metrics = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
            finally:
                stop(proc)
            results[label] = {"ok": rep.ok, "sent": rep.sent, "seconds": rep.seconds, "throughput": rep.throughput,
                              "p50": rep.p50, "p99": rep.p99, "errors": rep.errors, "bad_rejected": rep.bad_rejected,
                              "bad_mishandled": rep.bad_mishandled, "cut": rep.cut,
                              "error_samples": rep.error_samples, "impatient_sent": rep.impatient_sent,
                              "impatient_ok": rep.impatient_ok, "impatient_timeouts": rep.impatient_timeouts,
                              "cancelled_unscored": _metric(metrics, "rerank_cancelled_requests_total"),
                              "documents_scored": _metric(metrics, "rerank_documents_total")}
        base = next(iter(results.values()))["throughput"] or 1.0  # in-process when run, else the first system
        for label, r in results.items():
            rows.append({"reranker": name, "system": label, **r})
            print(f"{name:<8} {label:<22} {r['ok']:>5} {r['throughput']:8.1f} {r['p50'] * 1e3:8.1f} "
                  f"{r['p99'] * 1e3:8.1f} {r['errors']:>6} {r['cut']:>4} {r['bad_rejected']:>6} "
                  f"{r['bad_mishandled']:>5} {r['throughput'] / base:10.2f}x")
        impatient_label = next((s[0] for s in systems if s[3]), None)
        if impatient_label is not None and "service, batching" in results:
            r, plain = results[impatient_label], results["service, batching"]
            print(f"  impatient clients: {r['impatient_sent']} sent, {r['impatient_ok']} answered in time, "
                  f"{r['impatient_timeouts']} gave up; {r['cancelled_unscored']:.0f} queued requests cancelled "
                  f"unscored; documents scored {r['documents_scored']:.0f} (plain run {plain['documents_scored']:.0f})"
                  f"; the other clients' throughput {r['throughput'] / plain['throughput']:.2f}x the plain run")
        print()
    meta = {"clients": args.clients, "requests": args.requests, "seconds": args.seconds,
            "candidates": args.candidates, "impatient": args.impatient, "impatient_docs": args.impatient_docs,
            "impatient_timeout": args.impatient_timeout, "impatient_backoff": args.impatient_backoff,
            "ms_per_doc": args.ms_per_doc, "split_documents": args.split_documents,
            "python": platform.python_version(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "load_average": os.getloadavg()}
    save_results(args.output, {"meta": meta, "results": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
