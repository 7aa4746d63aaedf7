"""Overhead of each framework adapter over the bare engine, on the same inputs in the same run.

Inputs: the first ``--queries`` FAQ questions, each with ``--candidates`` answers (a deterministic slice of the
corpus, the relevant answer included), given to every system in its own document type: ``Candidate`` for the
bare engine, ``NodeWithScore`` for LlamaIndex, ``Document`` for Haystack and LangChain, all built before timing
(a pipeline already holds them). Every system reranks every query with the same reranker object, so the model
work is identical; the difference is the adapter: conversion in and out, events, copies.

Rerankers: the bundled MiniLM embedding reranker (real model work; the target is an overhead of at most 3%),
and the dependency-free ``KeywordReranker`` (almost no model work, so its column shows the adapter's absolute
cost per document). Each system runs ``--rounds`` times, interleaved with the others (the order rotated every
round); the median round is kept.
Results must agree: every adapter returns the bare engine's order and scores (checked, to 1e-6).

    python benchmarks/adapters.py [--queries 30] [--candidates 20] [--rounds 7] [--rerankers minilm,keyword]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _common import save_results

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def faq_inputs(n_queries: int, n_candidates: int) -> list[tuple[str, list[tuple[str, str]]]]:
    from rerank_plugins.eval.datasets import load_faq

    ds = load_faq()
    ids = list(ds.corpus)
    out = []
    for i, qid in enumerate(ds.judged_query_ids[:n_queries]):
        start = (i * 7) % len(ids)
        picked = [ids[(start + j) % len(ids)] for j in range(n_candidates)]
        relevant = next(iter(ds.qrels[qid]))
        if relevant not in picked:
            picked[-1] = relevant
        out.append((ds.queries[qid], [(d, ds.document_text(d)) for d in picked]))
    return out


def systems(reranker: Any, data: list[tuple[str, list[tuple[str, str]]]]) -> dict[str, Callable[[], list[Any]]]:
    """name -> a function reranking every query; each returns (ids, scores) per query."""
    from haystack import Document as HaystackDocument
    from haystack_integrations.components.rankers.rerank_plugins import RerankPluginsRanker
    from langchain_core.documents import Document as LangChainDocument
    from langchain_rerank_plugins import RerankPluginsCompressor
    from llama_index.core.schema import NodeWithScore, TextNode
    from llama_index.postprocessor.rerank_plugins import RerankPluginsRerank

    from rerank_plugins import Candidate

    cands = [[Candidate(id=d, text=t) for d, t in docs] for _, docs in data]
    nodes = [[NodeWithScore(node=TextNode(id_=d, text=t), score=1.0) for d, t in docs] for _, docs in data]
    hdocs = [[HaystackDocument(id=d, content=t) for d, t in docs] for _, docs in data]
    ldocs = [[LangChainDocument(id=d, page_content=t) for d, t in docs] for _, docs in data]
    queries = [q for q, _ in data]
    post = RerankPluginsRerank(model=reranker)
    ranker = RerankPluginsRanker(model=reranker)
    compressor = RerankPluginsCompressor(model=reranker)

    def bare() -> list[Any]:
        return [(r.ids, r.scores) for r in (reranker.rerank(q, c) for q, c in zip(queries, cands))]

    def llamaindex() -> list[Any]:
        outs = (post.postprocess_nodes(n, query_str=q) for q, n in zip(queries, nodes))
        return [([x.node.node_id for x in o], [x.score for x in o]) for o in outs]

    def haystack() -> list[Any]:
        outs = (ranker.run(query=q, documents=d)["documents"] for q, d in zip(queries, hdocs))
        return [([x.id for x in o], [x.score for x in o]) for o in outs]

    def langchain() -> list[Any]:
        outs = (compressor.compress_documents(d, q) for q, d in zip(queries, ldocs))
        return [([x.id for x in o], [x.metadata["relevance_score"] for x in o]) for o in outs]

    def bare_async() -> list[Any]:
        async def go() -> list[Any]:
            return [(r.ids, r.scores) for r in [await reranker.arerank(q, c) for q, c in zip(queries, cands)]]

        return asyncio.run(go())

    def llamaindex_async() -> list[Any]:
        async def go() -> list[Any]:
            outs = [await post.apostprocess_nodes(n, query_str=q) for q, n in zip(queries, nodes)]
            return [([x.node.node_id for x in o], [x.score for x in o]) for o in outs]

        return asyncio.run(go())

    return {
        "bare engine": bare,
        "LlamaIndex postprocessor": llamaindex,
        "Haystack ranker": haystack,
        "LangChain compressor": langchain,
        "bare engine (async)": bare_async,
        "LlamaIndex (async)": llamaindex_async,
    }


def check_parity(results: dict[str, list[Any]]) -> None:
    reference = results["bare engine"]
    for name, got in results.items():
        for (ids, scores), (ref_ids, ref_scores) in zip(got, reference):
            if ids != ref_ids or any(abs(a - b) > 1e-6 for a, b in zip(scores, ref_scores)):
                raise SystemExit(f"{name} disagrees with the bare engine: {ids[:5]} vs {ref_ids[:5]}")


def measure(fns: dict[str, Callable[[], list[Any]]], rounds: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in fns}
    results = {name: fn() for name, fn in fns.items()}  # warm-up round, also the parity check
    check_parity(results)
    names = list(fns)
    for r in range(rounds):
        # rotate who goes first each round, so no system always runs right after the same neighbour
        for name in names[r % len(names):] + names[: r % len(names)]:
            fn = fns[name]
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=30)
    ap.add_argument("--candidates", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--rerankers", default="minilm,keyword")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--output", default=str(Path(__file__).parent / "results" / "adapters.json"))
    args = ap.parse_args(argv)

    from rerank_plugins import load_reranker
    from rerank_plugins.testing.rerankers import KeywordReranker

    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    data = faq_inputs(args.queries, args.candidates)
    n_docs = sum(len(docs) for _, docs in data)
    rows = []
    print(f"{len(data)} FAQ queries x {args.candidates} candidates, median of {args.rounds} interleaved rounds\n")
    print(f"{'reranker':<10} {'system':<26} {'ms/query':>9} {'vs bare':>9} {'overhead us/doc':>16}")
    for which in args.rerankers.split(","):
        # plain scores, like MiniLM's (no reasoning, details or window traces to carry into metadata)
        reranker = KeywordReranker(reasoning=False, traces=False) if which == "keyword" else load_reranker(which)
        medians = measure(systems(reranker, data), args.rounds)
        for name, seconds in medians.items():
            base = medians["bare engine (async)" if "async" in name else "bare engine"]
            ratio = seconds / base
            per_doc = (seconds - base) / n_docs * 1e6
            rows.append({"reranker": which, "system": name, "seconds": seconds, "ratio": ratio, "us_per_doc": per_doc})
            print(f"{which:<10} {name:<26} {seconds / len(data) * 1e3:9.2f} {ratio - 1:+9.1%} {per_doc:16.1f}")
        print()
    meta = {
        "queries": len(data),
        "candidates": args.candidates,
        "rounds": args.rounds,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    save_results(args.output, {"meta": meta, "results": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
