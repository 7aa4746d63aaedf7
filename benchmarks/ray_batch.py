"""Ray Data batch reranking throughput: rows per second with 1 and 2 actors, against one plain process.

Rows: every Cranfield query (225) with its BM25 (bm25s, Lucene) top-``--candidates`` documents, written once
as JSON Lines. Reranker: the bundled MiniLM embedding model (``--model``). Systems, same rows, same run:

* ``in-process``: ``load_reranker(model).rerank_batch`` over the rows in batches of ``--batch-size``, in this
  process (model loading not timed);
* ``ray, N actor(s)``: :func:`rerank_plugins.batch.rerank_dataset` on a local Ray (``--ray-cpus`` logical CPUs,
  started once, not timed) with an actor pool of N, one CPU each, into a fresh output folder. The time includes
  reading, actor start-up (each actor loads its own model), reranking and writing the result parts.

Also checked: every Ray run returns the in-process order for every query and scores within 1e-6 (the largest
difference is printed). torch threads: one per actor (Ray sets ``OMP_NUM_THREADS`` from ``num_cpus``); the
in-process row uses ``--threads`` (default 1, for a like-for-like single-core figure; see the note printed).

    python benchmarks/ray_batch.py [--candidates 10] [--actors 1,2] [--batch-size 32] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _common import save_results

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def cranfield_rows(candidates: int) -> list[dict[str, Any]]:
    from rerank_plugins.eval.datasets import load_cranfield
    from rerank_plugins.eval.first_stage import bm25_run

    ds = load_cranfield()
    run = bm25_run(ds, k=candidates)
    return [
        {"query_id": q, "query": ds.queries[q],
         "candidates": [{"id": d, "text": ds.document_text(d), "score": s} for d, s in run[q]]}
        for q in ds.queries
    ]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="minilm")
    ap.add_argument("--candidates", type=int, default=10)
    ap.add_argument("--actors", default="1,2")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--ray-cpus", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the in-process row")
    ap.add_argument("--output", default=str(Path(__file__).parent / "results" / "ray_batch.json"))
    args = ap.parse_args(argv)

    import ray
    import torch

    from rerank_plugins import load_reranker
    from rerank_plugins.batch import read_results, rerank_dataset
    from rerank_plugins.batch.io import row_to_inputs

    rows = cranfield_rows(args.candidates)
    n_docs = sum(len(r["candidates"]) for r in rows)
    work = Path(tempfile.mkdtemp(prefix="ray-batch-bench-"))
    src = work / "rows.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    print(f"{len(rows)} Cranfield queries x BM25 top-{args.candidates} ({n_docs} documents), model {args.model}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}\n")

    torch.set_num_threads(args.threads)
    reranker = load_reranker(args.model)
    parsed = [row_to_inputs(r) for r in rows]
    start = time.perf_counter()
    want: dict[str, list[tuple[str, float]]] = {}
    for i in range(0, len(parsed), args.batch_size):
        chunk = parsed[i : i + args.batch_size]
        for p, ranked in zip(chunk, reranker.rerank_batch([c[1] for c in chunk], [c[2] for c in chunk])):
            want[p[0]] = [(r.id, r.score) for r in ranked]
    base_seconds = time.perf_counter() - start
    reranker.close()
    results = [{"system": f"in-process ({args.threads} thread)", "seconds": base_seconds,
                "rows_per_s": len(rows) / base_seconds, "max_abs_diff": 0.0, "same_order": True}]

    ray.init(num_cpus=args.ray_cpus, include_dashboard=False, log_to_driver=False)
    try:
        for n in (int(x) for x in args.actors.split(",")):
            out = work / f"out-{n}"
            shutil.rmtree(out, ignore_errors=True)
            report = rerank_dataset(str(src), str(out), reranker=args.model, actors=n, batch_size=args.batch_size)
            got = read_results(str(out))
            same = all([r["id"] for r in got[q]] == [d for d, _ in want[q]] for q in want)
            diff = max(abs(r["score"] - s) for q in want for r, (_, s) in zip(got[q], want[q]))
            results.append({"system": f"ray, {n} actor(s)", "seconds": report.seconds,
                            "rows_per_s": report.rows_per_second, "max_abs_diff": diff, "same_order": same})
    finally:
        ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)

    print(f"{'system':<22} {'seconds':>8} {'rows/s':>8} {'docs/s':>8} {'vs in-proc':>10} {'vs 1 actor':>10} "
          f"{'same order':>10} {'max |diff|':>11}")
    one = next((r["rows_per_s"] for r in results if r["system"].startswith("ray, 1 ")), None)
    for r in results:
        vs_one = f"{r['rows_per_s'] / one:9.2f}x" if one else "         -"
        print(f"{r['system']:<22} {r['seconds']:8.1f} {r['rows_per_s']:8.2f} "
              f"{r['rows_per_s'] * args.candidates:8.1f} {r['rows_per_s'] / results[0]['rows_per_s']:9.2f}x "
              f"{vs_one} {r['same_order']!s:>10} {r['max_abs_diff']:11.2e}")
    print("\nRay times include reading, actor start-up (one model load per actor) and writing; the machine's other "
          "load (see the load average) shares the same cores.")
    meta = {"model": args.model, "queries": len(rows), "candidates": args.candidates, "batch_size": args.batch_size,
            "ray_cpus": args.ray_cpus, "cpus": os.cpu_count(), "load_average": os.getloadavg(),
            "python": platform.python_version(), "machine": platform.machine(), "processor": platform.processor()}
    save_results(args.output, {"meta": meta, "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
