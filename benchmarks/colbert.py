"""ColBERT reranking speed and agreement: ours (``kind="colbert"``) against PyLate itself, same model, same candidates.

Model: a random BERT with answerai-colbert-small's shape (hidden 384, 12 layers, 12 heads, FFN 1536, 96-dim
projection; query_length 32, document_length 180, PyLate's defaults) saved once in PyLate's folder format
(``rerank_plugins.testing.tiny_encoders.build_colbert_folder``); random weights cost the same compute as trained
ones. Candidates: BM25 (bm25s, Lucene k1=1.5 b=0.75) top-``--depth`` of the first ``--queries`` Cranfield queries.

Systems, each timed end to end (encode the queries and every candidate, MaxSim, sort), in ``--repeats`` interleaved
rounds (a fresh random order each round, so load drift on a shared machine hits every system), best kept; wall
and process CPU time:

* PyLate 1.6.0: ``models.ColBERT.encode`` (queries, then all candidates flat, ``batch_size=32``) and
  ``rank.rerank``, in a child interpreter with its pinned stack kept alive between rounds
  (``tests/_support/pylate_reference.py``, ``PyLateWorker``; the model load is outside the timing);
* ours: ``ColBERTReranker.rerank_batch`` with ``padding_score="zero"`` (PyLate's scores, for the comparison) on
  the same number of threads; distinct texts are encoded once per call (PyLate encodes every candidate);
* ours, warm document cache (``cache_documents``): the same call again once every candidate's token embeddings
  are cached (reranking a fixed corpus for new queries), so only the queries are encoded;
* ours bf16 (``--bf16``): ``dtype="bfloat16"`` (AMX / AVX512-BF16 CPUs), scores no longer equal to 1e-5.

Columns: candidates/s, wall-time ratio to PyLate, CPU-time ratio, max |score difference| to PyLate and whether every
query's order is the same.

    python benchmarks/colbert.py [--queries 10] [--depth 50] [--threads 2] [--repeats 3] [--bf16]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

from _common import save_results

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

COLBERT_SMALL = {"hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 1536,
                 "initializer_range": 0.02}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=10)
    parser.add_argument("--depth", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bf16", action="store_true", help="add a dtype='bfloat16' row")
    parser.add_argument("--out", default="benchmarks/results/colbert.json")
    args = parser.parse_args(argv)

    import torch
    from _support.pylate_reference import PYLATE_VERSION, PyLateWorker

    from rerank_plugins.eval.datasets import load_cranfield
    from rerank_plugins.eval.first_stage import bm25_run
    from rerank_plugins.rankers.late_interaction import ColBERTReranker
    from rerank_plugins.testing.tiny_encoders import build_colbert_folder

    torch.set_num_threads(args.threads)
    dataset = load_cranfield()
    qids = sorted(dataset.qrels, key=lambda q: int(q) if q.isdigit() else q)[: args.queries]
    run = bm25_run(dataset, k=args.depth)
    queries = [dataset.queries[q] for q in qids]
    documents = [[dataset.document_text(d) for d, _ in run[q]] for q in qids]
    n = sum(len(d) for d in documents)

    with tempfile.TemporaryDirectory() as tmp:
        folder = build_colbert_folder(Path(tmp) / "colbert-small-shape", embedding_size=96, query_length=32,
                                      document_length=180, shape=COLBERT_SMALL)
        worker = PyLateWorker({"model": str(folder), "queries": queries, "documents": documents, "batch_size": 32,
                               "threads": args.threads})
        assert worker.info["version"] == PYLATE_VERSION, worker.info
        ours = {
            "ours (colbert)": ColBERTReranker(str(folder), padding_score="zero", batch_size=32),
            "ours, warm doc cache": ColBERTReranker(str(folder), padding_score="zero", batch_size=32,
                                                    cache_documents=n),
        }
        if args.bf16:
            ours["ours bf16"] = ColBERTReranker(str(folder), padding_score="zero", batch_size=32, dtype="bfloat16")
        for ranker in ours.values():
            ranker.rerank_batch(queries[:1], documents[:1])  # warm-up (first-call allocations), as PyLate's load
        ours["ours, warm doc cache"].rerank_batch(queries, documents)  # fills the cache
        names = ["PyLate " + PYLATE_VERSION, *ours]
        wall: dict[str, float] = {}
        cpu: dict[str, float] = {}
        outputs: dict[str, list[list[tuple[int, float]]]] = {}
        rng = random.Random(0)
        for _ in range(args.repeats):  # interleaved rounds in a fresh random order: load drifts hit every system
            order = names[:]
            rng.shuffle(order)
            for name in order:
                if name.startswith("PyLate"):
                    res = worker.run()
                    seconds, cpu_s = res["seconds"], res["cpu_seconds"]
                    ranked = [[(r["id"], r["score"]) for r in x] for x in res["rankings"]]
                else:
                    t0, c0 = time.perf_counter(), time.process_time()
                    results = ours[name].rerank_batch(queries, documents)
                    seconds, cpu_s = time.perf_counter() - t0, time.process_time() - c0
                    ranked = [[(r.original_position, r.score) for r in x.results] for x in results]
                wall[name] = min(wall.get(name, seconds), seconds)
                cpu[name] = min(cpu.get(name, cpu_s), cpu_s)
                outputs[name] = ranked
        worker.close()

    ref_name = names[0]
    rows = []
    for name in names:
        max_diff, same_order = 0.0, True
        for got, ref in zip(outputs[name], outputs[ref_name]):
            ref_scores = dict(ref)
            max_diff = max(max_diff, *(abs(s - ref_scores[i]) for i, s in got))
            same_order &= [i for i, _ in got] == [i for i, _ in ref]
        rows.append((name, n / wall[name], wall[ref_name] / wall[name], cpu[ref_name] / cpu[name], max_diff,
                     same_order))
    distinct = len({d for docs in documents for d in docs})
    print(f"{n} candidates ({distinct} distinct; {len(queries)} Cranfield queries x BM25 top-{args.depth}), "
          f"{args.threads} threads, best of {args.repeats}; model: random BERT 384x12 + 96-dim projection "
          "(answerai-colbert-small shape)")
    print(f"{'system':<22} {'cand/s':>8} {'ratio':>6} {'CPU ratio':>9} {'max |diff|':>11} {'same order':>10}")
    for name, rate, ratio, cpu_ratio, diff, order in rows:
        print(f"{name:<22} {rate:8.1f} {ratio:5.2f}x {cpu_ratio:8.2f}x {diff:11.2e} {order!s:>10}")
    save_results(args.out, {
        "candidates": n, "distinct_candidates": distinct, "queries": len(queries), "depth": args.depth,
        "threads": args.threads, "repeats": args.repeats, "python": sys.version.split()[0],
        "machine": platform.machine(),
        "rows": [dict(zip(("system", "candidates_per_s", "ratio", "cpu_ratio", "max_abs_diff", "same_order"), r))
                 for r in rows],
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
