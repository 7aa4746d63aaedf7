"""Speed and memory of rerankers on real candidates: the engine behind ``rerank-plugins bench``.

For each reranker: load time; per-query latency (one ``rerank`` call per query: p50, p95, mean); throughput of
that loop and of ``rerank_batch`` over all queries (documents and queries per second); peak Python-heap memory
(``tracemalloc``, on a short extra pass: native tensors are not traced) and resident memory (``resource``: the
process high-water mark, and the growth of current RSS across the load).
"""

from __future__ import annotations

import math
import os
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .._optional import require
from ..errors import ConfigError
from ..types import Candidate
from .datasets import Dataset
from .report import LoadReport
from .runner import candidates_for
from .trec import Run

__all__ = ["BenchResult", "bench_table", "benchmark_reranker", "peak_rss_mib", "rss_mib"]


def rss_mib() -> float:
    """Current resident set size of this process in MiB (Linux ``/proc``; falls back to the peak elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return peak_rss_mib()


def peak_rss_mib() -> float:
    """High-water mark of resident memory of this process in MiB (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    try:
        import resource
    except ImportError:  # Windows
        return math.nan
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def _pct(values: Sequence[float], q: float) -> float:
    np = require("numpy", "eval")
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else math.nan


@dataclass(frozen=True)
class BenchResult:
    name: str
    queries: int
    documents: int
    load_s: float
    p50_ms: float
    p95_ms: float
    mean_ms: float
    docs_per_s: float
    queries_per_s: float
    batch_docs_per_s: float
    batch_queries_per_s: float
    tracemalloc_peak_mib: float
    rss_growth_load_mib: float
    peak_rss_mib: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def benchmark_reranker(
    name: str,
    factory: Callable[[], Any],
    dataset: Dataset,
    run: Run,
    *,
    depth: int = 100,
    warmup: int = 1,
    memory_queries: int = 3,
    queries_per_batch: int = 16,
    progress: bool = False,
    report: LoadReport | None = None,
) -> BenchResult:
    """Load a reranker with ``factory()`` and time it on the top ``depth`` of ``run`` for every query of ``dataset``.

    ``warmup`` queries are reranked first and not timed. The reranker is closed at the end.
    """
    if warmup < 0 or memory_queries < 0:
        raise ConfigError("warmup and memory_queries must be >= 0")
    tqdm = require("tqdm", "eval").tqdm
    rep = report if report is not None else LoadReport(f"bench {name}")
    qids = [q for q in dataset.queries if q in run]
    if not qids:
        raise ConfigError(f"{dataset.name}: no query has first-stage results to benchmark")
    cands: dict[str, list[Candidate]] = {q: candidates_for(dataset, run[q], depth, rep, q)[0] for q in qids}
    n_docs = sum(len(c) for c in cands.values())

    rss_before = rss_mib()
    t0 = time.perf_counter()
    reranker = factory()
    load_s = time.perf_counter() - t0
    rss_growth = rss_mib() - rss_before
    try:
        for q in qids[:warmup]:
            reranker.rerank(dataset.queries[q], cands[q])
        latencies = []
        for q in tqdm(qids, desc=f"bench {name}", disable=not progress, unit="q"):
            t = time.perf_counter()
            reranker.rerank(dataset.queries[q], cands[q])
            latencies.append(time.perf_counter() - t)
        total = math.fsum(latencies)
        t = time.perf_counter()
        for start in range(0, len(qids), queries_per_batch):
            chunk = qids[start : start + queries_per_batch]
            reranker.rerank_batch([dataset.queries[q] for q in chunk], [cands[q] for q in chunk])
        batch_s = time.perf_counter() - t
        trace_peak = math.nan
        if memory_queries:
            was_tracing = tracemalloc.is_tracing()
            if not was_tracing:
                tracemalloc.start()
            tracemalloc.reset_peak()
            for q in qids[:memory_queries]:
                reranker.rerank(dataset.queries[q], cands[q])
            trace_peak = tracemalloc.get_traced_memory()[1] / 2**20
            if not was_tracing:
                tracemalloc.stop()
    finally:
        reranker.close()
    ms = [1000.0 * x for x in latencies]
    return BenchResult(
        name=name,
        queries=len(qids),
        documents=n_docs,
        load_s=load_s,
        p50_ms=_pct(ms, 50),
        p95_ms=_pct(ms, 95),
        mean_ms=math.fsum(ms) / len(ms),
        docs_per_s=n_docs / total if total > 0 else math.inf,
        queries_per_s=len(qids) / total if total > 0 else math.inf,
        batch_docs_per_s=n_docs / batch_s if batch_s > 0 else math.inf,
        batch_queries_per_s=len(qids) / batch_s if batch_s > 0 else math.inf,
        tracemalloc_peak_mib=trace_peak,
        rss_growth_load_mib=rss_growth,
        peak_rss_mib=peak_rss_mib(),
    )


def bench_table(results: Sequence[BenchResult]) -> str:
    """Markdown table of benchmark results."""
    head = [
        "reranker", "queries", "docs", "load (s)", "p50 (ms)", "p95 (ms)", "docs/s", "q/s",
        "batched docs/s", "tracemalloc peak (MiB)", "RSS +load (MiB)", "peak RSS (MiB)",
    ]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for r in results:
        cells = [
            r.name, str(r.queries), str(r.documents), f"{r.load_s:.1f}", f"{r.p50_ms:.1f}", f"{r.p95_ms:.1f}",
            f"{r.docs_per_s:.1f}", f"{r.queries_per_s:.2f}", f"{r.batch_docs_per_s:.1f}",
            f"{r.tracemalloc_peak_mib:.1f}", f"{r.rss_growth_load_mib:.0f}", f"{r.peak_rss_mib:.0f}",
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
